"""The offline bundle end to end (slow; `make test-all` and CI's slow run):

build the bundle (wheels from the pip cache / registry into a kept wheel cache, the
default model, configs, install.sh) -> install it into a fresh virtualenv in a temp
dir with `pip --no-index` only (install.sh runs its self-check) -> start the server
from that install with an example config on free loopback ports -> health SERVING,
upsert, query -> SIGTERM -> clean exit.

The first run downloads ~0.5 GB of wheels into ~/.cache/ranksearch/wheelhouse
(RANKSEARCH_WHEEL_CACHE overrides); later runs reuse it. Durations are printed
(pytest -s) for the runbook, never asserted.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(home: Path) -> dict[str, str]:
    """No pip configuration, no repo on the path, caches in the temp dir."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "RANKSEARCH_"))}
    env.update(HOME=str(home), RANKSEARCH_CACHE=str(home / "cache"), HF_HOME=str(home / "hf"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PIP_CONFIG_FILE=os.devnull,
               MPLCONFIGDIR=str(home / "mpl"), NUMBA_CACHE_DIR=str(home / "numba"))
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if ".venv" not in p)
    return env


def python311() -> str:
    exe = getattr(sys, "_base_executable", None) or shutil.which("python3.11")
    assert exe, "python3.11 is needed to install the bundle"
    return exe


def test_bundle_installs_offline_and_serves(tmp_path):
    sys.path.insert(0, str(REPO / "deploy"))
    try:
        import build_bundle
    finally:
        sys.path.pop(0)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    cache = Path(os.environ.get("RANKSEARCH_WHEEL_CACHE",
                                Path.home() / ".cache/ranksearch/wheelhouse"))
    archive = build_bundle.build_bundle(tmp_path / "out", cache)
    timings["build"] = time.monotonic() - t0
    size_mib = archive.stat().st_size / 2**20
    check = subprocess.run(["sha256sum", "-c", archive.name + ".sha256"], cwd=archive.parent,
                           capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout == f"{archive.name}: OK\n", check.stdout + check.stderr

    # carry it in: unpack somewhere else, the build folder is gone
    carried = tmp_path / "carried"
    with tarfile.open(archive) as tar:
        tar.extractall(carried, filter="data")
    shutil.rmtree(tmp_path / "out")
    (bundle,) = carried.iterdir()
    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    assert manifest["target"] == "linux_x86_64-cp311"
    assert any(f.startswith("wheelhouse/torch-2.13.0+cpu") for f in manifest["files"])
    assert not any("nvidia" in f for f in manifest["files"]), "a CUDA wheel got in"

    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(home)
    prefix, data = tmp_path / "opt" / "ranksearch", tmp_path / "data"
    t1 = time.monotonic()
    inst = subprocess.run(["bash", str(bundle / "install.sh"), "--prefix", str(prefix),
                           "--python", python311(), "--data-dir", str(data)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    timings["install"] = time.monotonic() - t1
    assert inst.returncode == 0, inst.stdout[-4000:] + inst.stderr[-4000:]
    assert "doctor: 0 failed, all good" in inst.stdout
    assert (data / "models" / "default" / "model.safetensors").exists()
    exe = prefix / "venv" / "bin" / "ranksearch"
    where = subprocess.run([str(prefix / "venv/bin/python"), "-c",
                            "import ranksearch, os; print(os.path.dirname(ranksearch.__file__))"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(prefix / "venv")), "not the bundle's install"

    # an example config, on free loopback ports, data in the temp dir
    cfg = yaml.safe_load((prefix / "etc/examples/single-loopback.yaml").read_text())
    port, metrics_port = free_port(), free_port()
    cfg.update(listen=f"127.0.0.1:{port}", data_dir=str(data))
    cfg["metrics"]["port"] = metrics_port
    config = tmp_path / "ranksearch.yaml"
    config.write_text(yaml.safe_dump(cfg))
    target = f"127.0.0.1:{port}"
    log = open(tmp_path / "server.log", "w")
    t2 = time.monotonic()
    server = subprocess.Popen([str(exe), "serve", "--config", str(config)], env=env,
                              cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while True:
            probe = subprocess.run([str(exe), "doctor", "--probe", target, "--timeout", "2"],
                                   env=env, capture_output=True, text=True)
            if probe.returncode == 0:
                break
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "not SERVING after 10 minutes"
            time.sleep(1)
        timings["ready"] = time.monotonic() - t2
        assert f"[  ok] health: {target}: SERVING" in probe.stdout

        client = [str(exe)]
        for doc_id, text in (("greeting", "how to say hello to a new colleague"),
                             ("files", "read a text file line by line in python"),
                             ("backup", "copy the database to another disk every night")):
            up = subprocess.run(client + ["upsert", doc_id, text, "--collection", "docs",
                                          "--server", target], env=env, capture_output=True,
                                text=True, timeout=120)
            assert up.returncode == 0 and "upserted 1" in up.stdout, up.stdout + up.stderr
        q = subprocess.run(client + ["query", "iterate over the lines of a file", "--k", "3",
                                     "--collection", "docs", "--json", "--server", target],
                           env=env, capture_output=True, text=True, timeout=120)
        assert q.returncode == 0, q.stderr
        hits = json.loads(q.stdout)["hits"]
        assert [h["id"] for h in hits][0] == "files"
        assert len(hits) == 3
    finally:
        t3 = time.monotonic()
        server.send_signal(signal.SIGTERM)
        try:
            rc = server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
        log.close()
    timings["stop"] = time.monotonic() - t3
    server_log = (tmp_path / "server.log").read_text()
    assert rc == 0, server_log[-4000:]
    assert '"stopped"' in server_log or "stopped" in server_log
    timings["total"] = time.monotonic() - t0
    print(f"\nbundle: {size_mib:.0f} MiB, {len(manifest['files'])} files; "
          + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
