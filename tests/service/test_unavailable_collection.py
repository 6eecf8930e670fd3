"""Issue 9 item 2: one collection that cannot be opened never stops the server.

A real data dir gets a collection whose stored index configuration FAISS cannot
build (written straight into its SQLite store, as an older version could have
stored it: HNSW M=1 segfaulted every start). The server starts, serves every other
collection, answers FAILED_PRECONDITION for that one, shows it in ListCollections,
Stats and the metrics, and an admin can delete it; the next start is clean."""
from __future__ import annotations

import json
import sqlite3
import urllib.request

import grpc
import pytest

from ranksearch.client import Document, RpcFailed, Variant
from ranksearch.indexer.store import DB_NAME


def plant_config(data_dir, collection: str, kind: str, params: dict) -> None:
    conn = sqlite3.connect(data_dir / "index" / DB_NAME)
    with conn:
        conn.execute("UPDATE variants SET index_kind = ?, index_params = ? WHERE collection = ?",
                     (kind, json.dumps(params), collection))
    conn.close()


def test_a_collection_that_cannot_be_opened_does_not_stop_the_server(make_server, tmp_path):
    data = tmp_path / "data"
    first = make_server(data_dir=data)
    client = first.client(retries=0)
    for name in ("bad", "good"):
        client.create_collection(name, [Variant("v", index_kind="hnsw", index_params={"M": 8})])
        client.upsert(name, [Document("a", "read a file line by line"), Document("b", "sort a list")])
    first.__exit__(None, None, None)
    plant_config(data, "bad", "hnsw", {"M": 1})

    second = make_server(data_dir=data, metrics={"port": 0})  # starts: no crash loop
    client = second.client(retries=0)
    assert client.search("read a file line by line", collection="good").hits[0].id == "a"
    for call in (lambda: client.search("x", collection="bad"), lambda: client.upsert("bad", [Document("c", "t")]),
                 lambda: client.get("bad", ["a"]), lambda: client.delete("bad", ["a"])):
        with pytest.raises(RpcFailed) as info:
            call()
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION, info.value
        assert info.value.field == "collection" and "'bad' is unavailable" in info.value.message
        assert "params.M" in info.value.message
    listed = {c.name: c.unavailable_reason for c in client.list_collections().collections}
    assert listed["good"] == "" and "not supported" in listed["bad"]
    stats = {c.name: c for c in client.stats().collections}
    assert stats["bad"].unavailable_reason == listed["bad"] and stats["bad"].documents == 2
    assert client.stats("bad").collections[0].unavailable_reason == listed["bad"]
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{second.server.metrics_port}/metrics").read().decode()
    assert 'ranksearch_collection_unavailable{collection="bad"} 1.0' in metrics
    assert 'ranksearch_collection_unavailable{collection="good"} 0.0' in metrics
    verify = client.verify()
    assert not verify.ok and any(p.startswith("bad: unavailable") for p in verify.problems)
    with pytest.raises(RpcFailed) as info:  # its configuration cannot be rebuilt: delete it
        client.rebuild("bad")
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert client.delete_collection("bad")
    assert [c.name for c in client.list_collections().collections] == ["good"]
    second.__exit__(None, None, None)

    third = make_server(data_dir=data)
    client = third.client(retries=0)
    assert [c.name for c in client.list_collections().collections] == ["good"]
    assert client.search("sort a list", collection="good").hits[0].id == "b"
    assert client.verify().ok
