"""Regenerate the Python stubs of the gRPC API from the .proto files.

Run as ``python -m ranksearch.proto.generate`` (or ``make proto``). The stubs are
committed in ``proto/ranksearch/v1/`` (installed as ``ranksearch.proto.v1``);
``tests/service/test_proto_stubs.py`` regenerates into a temporary folder and fails
when the committed files differ, so an edited .proto cannot ship with stale stubs.

protoc writes ``from ranksearch.v1 import search_pb2`` into the ``*_grpc.py`` file
(the import path of the .proto); that package does not exist once installed, so the
import is rewritten to ``ranksearch.proto.v1``.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent  # holds ranksearch/v1/*.proto
PROTO_FILES = ("ranksearch/v1/search.proto",)
STUB_DIR = PROTO_ROOT / "ranksearch" / "v1"
_IMPORT = re.compile(r"^from ranksearch\.v1 import (\w+_pb2)", re.MULTILINE)


def generate(out_dir: Path) -> list[Path]:
    """Generate stubs for PROTO_FILES into ``out_dir`` (flat); return the files written."""
    from grpc_tools import protoc  # build-time dependency only
    import grpc_tools

    out_dir.mkdir(parents=True, exist_ok=True)
    include = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *PROTO_FILES,
        ]
        rc = protoc.main(args)
        if rc != 0:
            raise RuntimeError(f"protoc failed with exit code {rc}: {' '.join(args)}")
        written = []
        for src in sorted((Path(tmp) / "ranksearch" / "v1").glob("*.py*")):
            text = _IMPORT.sub(r"from ranksearch.proto.v1 import \1", src.read_text())
            dest = out_dir / src.name
            dest.write_text(text)
            written.append(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=STUB_DIR,
                        help="output folder (default: the committed stub folder)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
