"""The two stores a store benchmark compares: the embedded store (SQLite + FAISS) in a
temporary folder, and a Milvus store on --uri or, without it, on a local
`milvus-lite server` started for the run (benchmarks/store_compare.py,
benchmarks/milvus_lexical.py)."""
from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

from ranksearch.indexer import Indexer, IndexerConfig
from ranksearch.indexer.milvus_store import MilvusStore
from ranksearch.indexer.milvus_testing import MilvusLite


def add_milvus_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--uri", help="measure this Milvus instead of starting a local milvus-lite "
                    "(token from $MILVUS_TOKEN; uses collections named bench_*)")


def open_stores(tmp: Path, stack: contextlib.ExitStack, uri: str | None,
                timeout_s: float) -> tuple[dict, str]:
    """({label: unopened store}, the Milvus store's label: "milvus" or "milvus-lite")."""
    remote = "milvus" if uri else "milvus-lite"
    uri = uri or stack.enter_context(MilvusLite(tmp / "milvus")).uri
    return {"embedded": Indexer(tmp / "embedded", IndexerConfig(snapshot_interval_s=0)),
            remote: MilvusStore(uri, token=os.environ.get("MILVUS_TOKEN", ""),
                                collection_prefix="bench_", timeout_s=timeout_s)}, remote
