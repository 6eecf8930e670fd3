"""The runbook's integrity check is what `make bundle` writes: `<archive>.sha256`
in sha256sum format, checked with the real `sha256sum -c` (the full bundle build is
the slow test in test_bundle.py)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_checksum_file_is_what_the_runbook_checks(tmp_path):
    sys.path.insert(0, str(REPO / "deploy"))
    try:
        import build_bundle
    finally:
        sys.path.pop(0)
    archive = tmp_path / "ranksearch-0.1.0-linux_x86_64-cp311.tar"
    archive.write_bytes(b"bundle bytes")
    written = build_bundle.write_checksum(archive)
    runbook = (REPO / "deploy" / "RUNBOOK.md").read_text()
    (command,) = re.findall(r"^sha256sum .*?(?=\s+#|$)", runbook, re.M)
    assert command == f"sha256sum -c {written.name}"
    ok = subprocess.run(command.split(), cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout == f"{archive.name}: OK\n"
    archive.write_bytes(b"tampered")
    assert subprocess.run(command.split(), cwd=tmp_path, capture_output=True).returncode != 0
