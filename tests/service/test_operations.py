"""Health, readiness, reflection, metrics, request ids, the concurrency limit,
deadlines and micro-batching."""
from __future__ import annotations

import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ranksearch.client import Document, RpcFailed
from ranksearch.proto.v1 import search_pb2 as pb
from ranksearch.service.batcher import MicroBatcher
from ranksearch.service.errors import DeadlineExceeded


def test_not_serving_until_recovery_done(make_server):
    gate = threading.Event()
    server = make_server(wait=False, server_kwargs={"before_recovery": gate.wait})
    client = server.client(retries=0)
    assert client.health() == "NOT_SERVING"
    assert client.health("ranksearch.v1.SearchService") == "NOT_SERVING"
    with pytest.raises(RpcFailed) as info:
        client.list_collections()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert "server is starting" in info.value.message
    gate.set()
    assert server.server.wait_ready(timeout=120)
    assert client.health() == "SERVING"
    assert client.health("ranksearch.v1.SearchService") == "SERVING"


def test_reflection_lists_the_service(server):
    channel = grpc.insecure_channel(server.address)
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                          timeout=10)
    names = {s.name for r in responses for s in r.list_services_response.service}
    channel.close()
    assert {"ranksearch.v1.SearchService", "grpc.health.v1.Health"} <= names


def test_metrics_endpoint_and_request_ids(make_server):
    server = make_server(metrics={"port": 0})
    client = server.client()
    client.create_collection("docs")
    client.upsert("docs", [Document("a", "read a file line by line")])
    client.search("read a file")
    with pytest.raises(RpcFailed):
        client.search("")
    # the server echoes the caller's request id
    _, call = client.stub.Search.with_call(pb.SearchRequest(query="x"), timeout=10,
                                           metadata=[("x-request-id", "req-123")])
    assert dict(call.initial_metadata())["x-request-id"] == "req-123"
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.server.metrics_port}/metrics",
                                  timeout=10).read().decode()
    assert 'ranksearch_requests_total{code="OK",method="Search"} 2.0' in body
    assert 'ranksearch_errors_total{code="INVALID_ARGUMENT",method="Search"} 1.0' in body
    assert 'ranksearch_request_latency_seconds_count{method="Search",variant="default"} 2.0' in body
    assert 'ranksearch_documents{collection="docs"} 1.0' in body
    assert 'ranksearch_index_size{collection="docs",variant="default"} 1.0' in body
    assert "ranksearch_encode_queue_depth" in body


def test_concurrency_limit_answers_resource_exhausted(make_server):
    server = make_server(limits={"max_concurrent_requests": 1})
    client = server.client(retries=0)
    client.create_collection("docs")
    release = threading.Event()

    def slow_stream():
        yield pb.UpsertRequest(collection="docs", documents=[pb.Document(id="a", text="held open")])
        release.wait(30)

    done = []
    worker = threading.Thread(target=lambda: done.append(client.stub.UpsertStream(slow_stream(), timeout=60)))
    worker.start()
    limiter = server.server.limiter
    while limiter.in_flight < 1:
        threading.Event().wait(0.01)
    with pytest.raises(RpcFailed) as info:
        client.list_collections()
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limits.max_concurrent_requests" in info.value.message
    release.set()
    worker.join(30)
    assert done[0].count == 1
    assert client.list_collections().collections[0].documents == 1


def test_server_drops_the_work_of_a_request_whose_deadline_passed(server):
    client = server.client(retries=0)
    client.upsert("docs", [Document("a", "text")])
    _, batcher = server.server.core.encoder("default")
    real, gate, seen = batcher._encode, threading.Event(), []

    def gated(texts, role):  # holds the encoder workers until the test lets them go
        seen.append(list(texts))
        gate.wait(30)
        return real(texts, role=role)

    batcher._encode = gated
    blockers = []
    for i in range(batcher.workers):  # occupy every worker, one pass each
        blockers.append(batcher.submit([f"occupy worker {i}"], role="query"))
        while len(seen) <= i:
            threading.Event().wait(0.01)
    with pytest.raises(RpcFailed) as info:
        client.search("late query", timeout=0.5)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    # the server's deadline starts when it receives the call, a little after the
    # client's: let it pass too before the worker is released
    time.sleep(1.0)
    gate.set()
    for blocker in blockers:
        blocker.result(10)
    assert client.search("text").hits[0].id == "a"
    assert ["late query"] not in seen  # dropped, never encoded


def test_batcher_drops_jobs_whose_caller_gave_up():
    calls = []
    batcher = MicroBatcher(lambda texts: calls.append(list(texts)) or np.zeros((len(texts), 2), np.float32))
    with pytest.raises(DeadlineExceeded):
        batcher.encode(["gone"], alive=lambda: False)
    assert batcher.encode(["kept"]).shape == (1, 2)
    batcher.close()
    assert calls == [["kept"]]


@pytest.mark.parametrize("enabled", [True, False])
def test_batcher_combines_waiting_jobs_only_when_enabled(enabled):
    started, release, calls = threading.Event(), threading.Event(), []

    def encode(texts):  # (n, 1): row i = len(text i)
        calls.append(list(texts))
        if len(calls) == 1:
            started.set()
            release.wait(10)
        return np.array([[len(t)] for t in texts], np.float32)

    batcher = MicroBatcher(encode, enabled=enabled, max_wait_ms=0, max_batch_texts=8)
    first = batcher.submit(["a"])
    started.wait(10)  # the worker is busy: the next jobs queue up behind it
    futures = [batcher.submit(["bb", "ccc"]), batcher.submit(["dddd"])]
    release.set()
    assert first.result(10).tolist() == [[1.0]]
    assert futures[0].result(10).tolist() == [[2.0], [3.0]]
    assert futures[1].result(10).tolist() == [[4.0]]
    batcher.close()
    assert calls == ([["a"], ["bb", "ccc", "dddd"]] if enabled else [["a"], ["bb", "ccc"], ["dddd"]])


def test_core_stops_before_encoding_when_the_caller_is_gone(server):
    from ranksearch.indexer import SearchRequest

    server.client().upsert("docs", [Document("a", "text")])
    core = server.server.core
    batches_before = server.server.metrics.batch_jobs._sum.get()
    with pytest.raises(DeadlineExceeded):
        core.search("docs", ["x"], SearchRequest(), alive=lambda: False)
    with pytest.raises(DeadlineExceeded):
        core.upsert("docs", [Document("b", "text")], alive=lambda: False)
    assert server.server.metrics.batch_jobs._sum.get() == batches_before  # nothing encoded
    assert [d.id for d in server.client().get("docs", ["a", "b"])] == ["a"]
