"""CLI subcommands against a real server, and `serve` + SIGTERM in a subprocess."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import yaml

from ranksearch.cli import main
from ranksearch.client import SearchClient


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_client_commands(server, capsys, tmp_path):
    s = ["--server", server.address]
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("\n".join(json.dumps(d) for d in [
        {"id": "read", "text": "read a file line by line", "metadata": {"kind": "io"}},
        {"id": "sort", "text": "sort a list of numbers", "title": "sorting"},
        {"id": "hash", "text": "compute a sha256 hash"}]) + "\n")
    assert _run(capsys, "import", str(corpus), "--quiet", "--collection", "docs", *s)[:2] \
        == (0, "imported 3 into docs (3 written, 0 unchanged and skipped)\n")
    assert _run(capsys, "upsert", "json", "serialise an object to json", "--meta", "kind=fmt",
                "--collection", "docs", *s)[1] \
        == "upserted 1\n"
    code, out, _ = _run(capsys, "query", "read a file line by line", "--k", "2", *s)
    assert code == 0 and out.splitlines()[0] == "# variant: default"
    assert out.splitlines()[1].split()[2] == "read"
    code, out, _ = _run(capsys, "query", "anything", "--filter", "kind=fmt", "--json", *s)
    assert [h["id"] for h in json.loads(out)["hits"]] == ["json"]
    code, out, _ = _run(capsys, "query", "read a file line by line", "--farthest", "--k", "4", "--json", *s)
    assert json.loads(out)["hits"][-1]["id"] == "read"
    code, out, _ = _run(capsys, "get", "sort", "nope", *s)
    assert json.loads(out) == {"id": "sort", "text": "sort a list of numbers",
                               "metadata": {"title": "sorting"}}
    assert _run(capsys, "delete", "sort", "--collection", "docs", *s)[1] == "deleted 1\n"
    code, out, _ = _run(capsys, "stats", *s)
    assert json.loads(out)["collections"][0]["documents"] == 3  # a number, not a string
    assert _run(capsys, "collections", "--create", "more", *s)[1] == "created more (variant default, analyzer auto)\n"
    code, out, _ = _run(capsys, "collections", *s)
    assert out.splitlines() == ["docs (default): 3 documents; variants: default[flat, dim 32]",
                                "more: 0 documents; variants: default[flat, dim 32]"]
    code, _, err = _run(capsys, "query", "", *s)
    assert code == 1 and err == "error: INVALID_ARGUMENT: query: is empty (field query)\n"
    code, _, err = _run(capsys, "query", "x", "--collection", "nope", *s)
    assert code == 1 and "NOT_FOUND: collection: collection 'nope' does not exist" in err


def test_config_check(capsys, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"listen": "127.0.0.1:6000", "limits": {"max_k": 20}}))
    code, out, _ = _run(capsys, "config", "check", str(good))
    assert code == 0 and out.startswith(f"ok: {good} (listen 127.0.0.1:6000")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"limits": {"max_kk": 20}}))
    code, _, err = _run(capsys, "config", "check", str(bad))
    assert code == 2 and err.startswith("error: limits.max_kk: unknown key")
    open_port = tmp_path / "open.yaml"
    open_port.write_text(yaml.safe_dump({"listen": "0.0.0.0:6000"}))
    code, _, err = _run(capsys, "config", "check", str(open_port))
    assert code == 2 and "error: listen: 0.0.0.0:6000 is not a loopback address" in err
    code, out, _ = _run(capsys, "config", "hash-token", "abc")
    assert out.strip() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_config_is_introspectable():
    from ranksearch.service.config import describe

    rows = describe()
    assert all(row["doc"] for row in rows), [r["key"] for r in rows if not r["doc"]]
    keys = {row["key"]: row for row in rows}
    assert keys["limits.max_k"] == {"key": "limits.max_k", "type": "int", "default": 1000,
                                    "doc": "largest k of a search"}
    assert keys["tls"]["type"] == "section"


def test_serve_and_sigterm(tmp_path, tiny_model):
    """`ranksearch serve` in a subprocess: ready, answers, and on SIGTERM drains,
    snapshots and exits 0."""
    import shutil
    import socket

    data = tmp_path / "data"
    shutil.copytree(tiny_model, data / "models" / "default")
    with socket.socket() as sock:  # a free port (the server sets SO_REUSEPORT off)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({"metrics": {"port": None}, "bootstrap": {"enabled": False},
                                      "default_collection": "docs", "encoder_threads": 1}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ranksearch.cli", "serve", "--config", str(config),
                             "--data-dir", str(data), "--listen", f"127.0.0.1:{port}"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        with SearchClient(f"127.0.0.1:{port}", timeout=10) as client:
            client.wait_until_serving(timeout=120)
            client.create_collection("docs")
            client.upsert("docs", [{"id": "a", "text": "survives a restart"}])
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    messages = [entry["msg"] for entry in logs]
    assert "serving" in messages and "shutting down" in messages and messages[-1] == "stopped"
    rpc = [e for e in logs if e["msg"] == "rpc" and e["method"].endswith("/Upsert")]
    assert rpc and rpc[0]["code"] == "OK" and len(rpc[0]["request_id"]) == 32
    assert list((data / "index").rglob("*")), "no index files written"


def test_serve_exits_non_zero_when_start_up_fails(make_server, tmp_path):
    """A data dir held by another server: start-up fails, `serve` says why and exits 1
    (rather than sitting NOT_SERVING forever)."""
    running = make_server(data_dir=tmp_path / "shared")
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({"metrics": {"port": None}, "bootstrap": {"enabled": False}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "ranksearch.cli", "serve", "--config", str(config),
                           "--data-dir", str(tmp_path / "shared"), "--listen", "127.0.0.1:0"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    logs = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert [e["msg"] for e in logs if e["level"] == "ERROR"][-1] == "exiting: start-up failed"
    assert running.client().health() == "SERVING"


def test_collections_create_sets_language_mode_and_model(server, capsys):
    s = ("--server", server.address)
    code, out, _ = _run(capsys, "collections", "--create", "faq-ja", "--language", "ja",
                        "--default-mode", "hybrid", "--model", "default", *s)
    assert code == 0 and "analyzer ja" in out
    info, = [c for c in server.client().list_collections().collections if c.name == "faq-ja"]
    assert info.lexical.analyzer == "ja" and info.variants[0].model == "default"
    server.client().upsert("faq-ja", [{"id": "pw", "text": "パスワードを忘れた場合は再設定してください"},
                                      {"id": "vpn", "text": "VPNに接続できない場合の対処"}])
    code, out, _ = _run(capsys, "query", "パスワード 再設定", "--collection", "faq-ja", "--mode", "lexical", *s)
    assert code == 0 and out.splitlines()[1].split()[2] == "pw"
    code, _, err = _run(capsys, "collections", "--create", "x", "--model", "no-such-model", *s)
    assert code == 1 and "NOT_FOUND" in err and "variants[0].model" in err
