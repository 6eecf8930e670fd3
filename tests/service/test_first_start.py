"""First start on an empty data dir with the real default encoder (all-MiniLM-L6-v2
converted at full rank) and the whole built-in stdlib corpus. Minutes on 2 cores."""
from __future__ import annotations

import threading

import pytest

from ranksearch.service.config import ServiceConfig, from_dict
from ranksearch.service.testing import LocalServer


def _config(data_dir) -> ServiceConfig:
    return from_dict(ServiceConfig, {
        "listen": "127.0.0.1:0", "data_dir": str(data_dir), "metrics": {"port": None},
        "logging": {"level": "WARNING"}})


@pytest.mark.slow
def test_first_start_indexes_the_builtin_corpus_then_restarts_without_encoding(tmp_path):
    data = tmp_path / "data"
    gate = threading.Event()
    with LocalServer(_config(data), wait=False, before_recovery=gate.wait) as first:
        client = first.client(retries=0)
        assert client.health() == "NOT_SERVING"
        gate.set()
        assert first.server.wait_ready(timeout=1800)
        assert client.health() == "SERVING"
        collections = client.list_collections()
        assert collections.default_collection == "stdlib"
        (stdlib,) = collections.collections
        assert stdlib.documents > 1000
        hits = client.search("read a file line by line", k=10, include_text=True).hits
        titles = " ".join(h.metadata.get("title", "") + " " + h.text[:200] for h in hits).lower()
        assert "line" in titles and ("read" in titles or "file" in titles), titles
        documents = stdlib.documents
    with LocalServer(_config(data)) as second:
        client = second.client()
        assert client.list_collections().collections[0].documents == documents
        assert second.server.metrics.batch_jobs._sum.get() == 0  # nothing was re-encoded
        assert client.search("read a file line by line", k=3).hits
