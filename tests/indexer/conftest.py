"""Fixtures: real SQLite files and real FAISS indexes in tmp_path."""
from __future__ import annotations

import pytest

from ranksearch.indexer import Indexer, IndexerConfig


@pytest.fixture
def make_indexer(tmp_path):
    opened: list[Indexer] = []

    def make(sub: str = "data", **cfg) -> Indexer:
        cfg.setdefault("snapshot_interval_s", 0)
        ix = Indexer(tmp_path / sub, IndexerConfig(**cfg))
        ix.open()
        opened.append(ix)
        return ix

    yield make
    for ix in opened:
        ix.close()


@pytest.fixture
def ix(make_indexer) -> Indexer:
    return make_indexer()
