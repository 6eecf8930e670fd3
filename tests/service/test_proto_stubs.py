"""The committed stubs must match what the .proto generates today."""
from __future__ import annotations

from pathlib import Path

from ranksearch.proto import generate


def test_committed_stubs_are_up_to_date(tmp_path: Path):
    written = generate.generate(tmp_path)
    names = sorted(p.name for p in written)
    assert names == ["search_pb2.py", "search_pb2.pyi", "search_pb2_grpc.py"]
    stale = [p.name for p in written
             if (generate.STUB_DIR / p.name).read_text() != p.read_text()]
    assert not stale, (
        f"committed stubs {stale} differ from search.proto; run `make proto` "
        "(python -m ranksearch.proto.generate) and commit the result")


def test_grpc_stub_imports_from_installed_package():
    text = (generate.STUB_DIR / "search_pb2_grpc.py").read_text()
    assert "from ranksearch.proto.v1 import search_pb2" in text
    assert "from ranksearch.v1 import" not in text
