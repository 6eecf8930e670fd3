"""Ops friction (issue 9, item 9): doctor recognises its own running server, the
data dir resolves against the config file, TLS files are checked before start, the
metrics endpoint stays on loopback unless opted in, and a second server on one host
gets a clean error for a taken metrics port (and can be given its own)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import yaml

from ranksearch.cli import main
from ranksearch.errors import ConfigError
from ranksearch.service import doctor
from ranksearch.service.config import load_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_doctor_recognises_its_own_running_server(make_server, tmp_path, capsys):
    metrics_port = _free_port()
    server = make_server(data_dir=tmp_path / "data", metrics={"port": metrics_port})
    config = tmp_path / "ranksearch.yaml"
    config.write_text(yaml.safe_dump({"listen": server.address, "data_dir": "data",
                                      "metrics": {"port": metrics_port}}))
    code = main(["doctor", "--config", str(config), "--no-model"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[  ok] ports: in use by the ranksearch server running on this data dir: " \
           f"grpc {server.address} (health SERVING), metrics 127.0.0.1:{metrics_port} " \
           "(serves ranksearch metrics)" in out
    assert "[skip] index: the server is running" in out
    # the same ports, but another data dir: not its own server
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"listen": server.address, "data_dir": "elsewhere",
                                     "metrics": {"port": metrics_port}}))
    assert main(["doctor", "--config", str(other), "--no-model"]) == 1
    assert "[fail] ports: grpc" in capsys.readouterr().out


def test_relative_paths_in_a_config_file_resolve_against_its_folder(tmp_path, monkeypatch):
    (tmp_path / "etc").mkdir()
    config = tmp_path / "etc" / "ranksearch.yaml"
    config.write_text("data_dir: ../var/data\ntls: {cert_file: tls/c.pem, key_file: tls/k.pem}\n")
    monkeypatch.chdir("/")
    loaded = load_config(config)
    assert loaded.data_dir == str(tmp_path / "etc" / "../var/data")
    assert loaded.tls.cert_file == str(tmp_path / "etc" / "tls/c.pem")
    assert load_config(config, {"data_dir": "flag/dir"}).data_dir == "flag/dir"  # flags: cwd


def test_config_check_and_doctor_check_tls_files(tmp_path, capsys):
    config = tmp_path / "tls.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "d"),
                                      "tls": {"cert_file": "server.crt", "key_file": "server.key"}}))
    code = main(["config", "check", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and err == (f"error: tls.cert_file: cannot read {tmp_path / 'server.crt'}: "
                                 "No such file or directory\n")
    (tmp_path / "server.crt").write_text("cert")
    (tmp_path / "server.key").write_text("key")
    (tmp_path / "server.key").chmod(0)
    if os.geteuid() != 0:  # root reads anything
        assert main(["config", "check", str(config)]) == 2
        assert "tls.key_file: cannot read" in capsys.readouterr().err
    (tmp_path / "server.key").unlink()
    checks = doctor.run_doctor(str(config), load_models=False)
    assert checks[0].status == "fail" and "tls.key_file: cannot read" in checks[0].detail


def test_metrics_on_a_non_loopback_host_needs_an_explicit_opt_in(tmp_path, capsys):
    config = tmp_path / "m.yaml"
    config.write_text(yaml.safe_dump({"metrics": {"host": "0.0.0.0", "port": 9464}}))
    assert main(["config", "check", str(config)]) == 2
    assert "error: metrics.host: 0.0.0.0 is not a loopback address" in capsys.readouterr().err
    config.write_text(yaml.safe_dump({"metrics": {"host": "0.0.0.0", "port": 9464, "allow_remote": True}}))
    assert main(["config", "check", str(config)]) == 0
    assert "warning: metrics endpoint on 0.0.0.0:9464 is reachable from other hosts" in capsys.readouterr().out
    config.write_text(yaml.safe_dump({"metrics": {"host": "0.0.0.0", "port": None}}))
    assert main(["config", "check", str(config)]) == 0  # no endpoint, nothing exposed


def _serve(tmp_path, tiny_model, *flags: str) -> subprocess.CompletedProcess:
    import shutil

    data = tmp_path / "data"
    if not data.exists():
        shutil.copytree(tiny_model, data / "models" / "default")
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({"bootstrap": {"enabled": False}, "data_dir": "data"}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "ranksearch.cli", "serve", "--config", str(config),
                           "--listen", "127.0.0.1:0", *flags],
                          capture_output=True, text=True, env=env, timeout=120)


def test_a_taken_metrics_port_is_a_clean_error(tmp_path, tiny_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _serve(tmp_path, tiny_model, "--metrics-listen", f"127.0.0.1:{port}")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"error: metrics.port: cannot listen on 127.0.0.1:{port} for metrics:" in proc.stderr
    assert "--metrics-listen" in proc.stderr
    proc = _serve(tmp_path, tiny_model, "--metrics-listen", "0.0.0.0:0")
    assert proc.returncode == 2 and "error: metrics.host: 0.0.0.0 is not a loopback address" in proc.stderr
    proc = _serve(tmp_path, tiny_model, "--metrics-listen", "nowhere")
    assert proc.returncode == 2 and "error: --metrics-listen: 'nowhere' is not HOST:PORT" in proc.stderr


def test_metrics_listen_gives_a_second_server_its_own_port(make_server, tmp_path):
    from ranksearch.cli import build_parser
    from ranksearch.service.cli import _metrics_listen

    args = build_parser().parse_args(["serve", "--metrics-listen", "127.0.0.1:9999"])
    cfg = load_config(None)
    assert (_metrics_listen(cfg.metrics, args.metrics_listen).host,
            _metrics_listen(cfg.metrics, args.metrics_listen).port) == ("127.0.0.1", 9999)
    assert _metrics_listen(cfg.metrics, "off").port is None
    with pytest.raises(ConfigError):
        load_config(None, {"metrics": {"host": "0.0.0.0", "port": 1}}).check_security()
