"""Verify and Rebuild on a running server: the operator's index checks without a stop."""
from __future__ import annotations

import json

import faiss
import grpc
import numpy as np
import pytest

from ranksearch.cli import main
from ranksearch.client import Document, RpcFailed

TEXTS = {f"d{i}": f"note {i} about {w}" for i, w in enumerate(
    ["reading files", "sorting lists", "json parsing", "regular expressions", "gzip streams", "threads"])}


def _loaded(server):
    client = server.client()
    client.upsert("docs", [Document(i, t) for i, t in TEXTS.items()])
    return client


def _lose_a_vector_in_memory(server, doc_id: str) -> None:
    """Simulate an index that drifted from SQLite (what Verify exists to catch)."""
    indexer = server.server.core.indexer
    state = indexer._collections["docs"]
    index = state.indexes["default"]
    with state.lock.write():
        index.exact.remove_ids(faiss.IDSelectorBatch(np.array([state.by_id[doc_id]], dtype=np.int64)))


def test_verify_reports_a_healthy_server(server):
    client = _loaded(server)
    response = client.verify()
    assert response.ok and list(response.problems) == []
    report = json.loads(response.report_json)
    assert report["docs"]["documents"] == len(TEXTS)
    assert report["docs"]["variants"]["default"] == {"vectors": len(TEXTS), "index_matches_sqlite": True}


def test_rebuild_while_serving_repairs_a_drifted_index(server, capsys):
    client = _loaded(server)
    _lose_a_vector_in_memory(server, "d2")
    assert "d2" not in [h.id for h in client.search(TEXTS["d2"], k=len(TEXTS)).hits]
    assert main(["admin", "verify", "--server", server.address]) == 1
    out = json.loads(capsys.readouterr().out)
    assert not out["ok"] and "docs/default" in out["problems"][0]

    response = client.rebuild("docs")
    assert list(response.collections) == ["docs"] and response.ok and response.seconds >= 0
    assert client.search(TEXTS["d2"]).hits[0].id == "d2"  # searchable again, nothing re-encoded
    assert main(["admin", "rebuild", "--server", server.address]) == 0
    assert "rebuilt docs in" in capsys.readouterr().out
    assert main(["admin", "verify", "--server", server.address]) == 0


def test_rebuild_of_an_unknown_collection_names_the_field(server):
    with pytest.raises(RpcFailed) as info:
        server.client().rebuild("nope")
    assert (info.value.code, info.value.field) == (grpc.StatusCode.NOT_FOUND, "collection")
