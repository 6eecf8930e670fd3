"""The Python client: typed results, retries on UNAVAILABLE, deadlines, errors."""
from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest

from ranksearch.client import Document, Hit, RpcFailed, SearchClient, SearchResult, Variant


def test_typed_round_trip(make_server):
    server = make_server()
    with SearchClient(server.address) as client:
        info = client.create_collection("notes", [Variant("v1")])
        assert (info.name, info.default_variant, info.variants[0].dim) == ("notes", "v1", 32)
        words = ["read", "write", "sort", "hash", "json", "regex", "gzip", "thread", "random", "time"]
        assert client.upsert_stream("notes", (Document(str(i), f"note on {w}") for i, w in enumerate(words)),
                                    batch_size=3) == 10
        result = client.search("note on thread", collection="notes", k=2, include_text=True)
        assert isinstance(result, SearchResult) and isinstance(result.hits[0], Hit)
        assert (result.hits[0].id, result.hits[0].text, result.variant) == ("7", "note on thread", "v1")
        vectors, variant = client.embed(["a", "b"], collection="notes")
        assert vectors.shape == (2, 32) and vectors.dtype == np.float32 and variant == "v1"
        assert [d.id for d in client.get("notes", ["3", "x"])] == ["3"]


def test_retries_unavailable_until_exhausted(make_server):
    gate = threading.Event()
    server = make_server(wait=False, server_kwargs={"before_recovery": gate.wait})
    client = server.client(retries=2, backoff=0.01, max_backoff=0.02)
    with pytest.raises(RpcFailed) as info:
        client.list_collections()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert server.server.access.counts["ListCollections"] == 3  # first try + 2 retries
    gate.set()


def test_retry_succeeds_once_the_server_is_ready(make_server):
    gate = threading.Event()
    server = make_server(wait=False, server_kwargs={"before_recovery": gate.wait})
    counts = server.server.access.counts

    def open_gate_after_first_refusal():
        while not counts.get("ListCollections"):
            threading.Event().wait(0.01)
        gate.set()

    threading.Thread(target=open_gate_after_first_refusal, daemon=True).start()
    client = server.client(retries=30, backoff=0.05, max_backoff=0.5, timeout=120)
    assert client.list_collections().collections == []
    assert counts["ListCollections"] >= 2


def test_upsert_stream_of_a_list_is_retried_whole_and_an_iterator_is_not(make_server, tmp_path):
    first = make_server(data_dir=tmp_path / "restarting")
    first.client().create_collection("notes")
    first.__exit__(None, None, None)
    gate = threading.Event()  # the restarted server answers UNAVAILABLE until it opens
    server = make_server(data_dir=tmp_path / "restarting", wait=False, server_kwargs={"before_recovery": gate.wait})
    counts = server.server.access.counts
    docs = [Document(str(i), f"note {i}") for i in range(5)]
    with pytest.raises(RpcFailed) as info:  # a generator is consumed: one try only
        server.client(retries=5, backoff=0.01).upsert_stream("notes", iter(docs), batch_size=2)
    assert info.value.code == grpc.StatusCode.UNAVAILABLE and counts["UpsertStream"] == 1

    def open_gate_after_second_refusal():
        while counts.get("UpsertStream", 0) < 2:
            threading.Event().wait(0.01)
        gate.set()

    threading.Thread(target=open_gate_after_second_refusal, daemon=True).start()
    client = server.client(retries=30, backoff=0.05, max_backoff=0.5, timeout=120)
    assert client.upsert_stream("notes", docs, batch_size=2) == 5
    assert counts["UpsertStream"] >= 3
    assert [d.id for d in client.get("notes", [d.id for d in docs])] == ["0", "1", "2", "3", "4"]


def test_invalid_argument_is_not_retried_and_names_the_field(make_server):
    server = make_server()
    client = server.client(retries=5)
    client.create_collection("docs")
    with pytest.raises(RpcFailed) as info:
        client.search("x", k=-3)
    assert (info.value.code, info.value.field) == (grpc.StatusCode.INVALID_ARGUMENT, "k")
    assert len(info.value.request_id) == 32
    assert server.server.access.counts["Search"] == 1


def test_deadline(make_server):
    server = make_server()
    with pytest.raises(RpcFailed) as info:
        server.client().list_collections(timeout=0)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_unreachable_server_gives_unavailable_after_retries():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with SearchClient(f"127.0.0.1:{port}", retries=1, backoff=0.01, timeout=5) as client:
        with pytest.raises(RpcFailed) as info:
            client.list_collections()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
