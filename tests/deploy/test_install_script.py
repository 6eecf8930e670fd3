"""install.sh's refusals and its rollback, on a fake bundle (real bash, real venv,
real pip with --no-index; no wheels, so pip fails the way a truncated bundle does)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def fake_bundle(root: Path, python_version: str) -> Path:
    bundle = root / "bundle"
    (bundle / "wheelhouse").mkdir(parents=True)
    (bundle / "configs").mkdir()
    (bundle / "deploy").mkdir()
    shutil.copy2(REPO / "deploy/install.sh", bundle / "install.sh")
    (bundle / "MANIFEST.json").write_text(json.dumps(
        {"name": "ranksearch", "version": "0.1.0", "python_version": python_version}, indent=2))
    return bundle


def python() -> str:
    return getattr(sys, "_base_executable", None) or sys.executable


def run_install(bundle: Path, prefix: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    return subprocess.run(["bash", str(bundle / "install.sh"), "--prefix", str(prefix),
                           "--python", python(), "--no-self-check"],
                          capture_output=True, text=True, env=env, timeout=300)


def test_refuses_a_bundle_for_another_python(tmp_path):
    bundle = fake_bundle(tmp_path, "3.99")
    result = run_install(bundle, tmp_path / "opt")
    have = "%d.%d" % sys.version_info[:2]
    assert result.returncode == 1
    assert f"bundle is for Python 3.99 but '{python()}' is {have}" in result.stderr
    assert not (tmp_path / "opt").exists()


def test_a_failed_install_puts_the_previous_one_back(tmp_path):
    have = "%d.%d" % sys.version_info[:2]
    bundle = fake_bundle(tmp_path, have)  # empty wheelhouse: pip --no-index must fail
    prefix = tmp_path / "opt"
    (prefix / "venv").mkdir(parents=True)
    (prefix / "venv" / "previous-release").write_text("0.0.9")
    result = run_install(bundle, prefix)
    assert result.returncode == 1
    assert "installation failed; the previous installation (if any) was put back" in result.stderr
    assert "No matching distribution found for ranksearch==0.1.0" in result.stderr
    assert (prefix / "venv" / "previous-release").read_text() == "0.0.9"
    assert not (prefix / "venv.previous").exists()


def test_unknown_option_is_named(tmp_path):
    bundle = fake_bundle(tmp_path, "3.11")
    result = subprocess.run(["bash", str(bundle / "install.sh"), "--prefx", "/x"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "install.sh: unknown option '--prefx'" in result.stderr
