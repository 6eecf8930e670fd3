"""Precision per variant over gRPC; a large request is split and interleaved with
small calls; stop() fails what cannot finish within the grace instead of waiting."""
import threading
import time

import grpc
import pytest

from ranksearch.client import RpcFailed, Variant
from ranksearch.encoder import precision as precisions


def test_variant_precision_is_validated_stored_and_reported(make_server, monkeypatch):
    monkeypatch.setattr(precisions, "cpu_flags", lambda: frozenset())  # a CPU without bf16
    client = make_server().client()
    with pytest.raises(RpcFailed) as info:
        client.create_collection("bad", [Variant(name="v", precision="fp16")])
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.field == "variants[0].precision"
    info = client.create_collection("c", [Variant(name="a"), Variant(name="b", precision="bf16")])
    assert [(v.name, v.precision) for v in info.variants] == [("a", "fp32"), ("b", "bf16")]
    stats = {v.name: v for v in client.stats("c").collections[0].variants}
    assert (stats["b"].precision, stats["b"].effective_precision) == ("bf16", "fp32")  # fell back
    assert stats["a"].engine == "torch" and stats["b"].model == stats["a"].model
    assert client.list_collections().collections[0].variants[1].precision == "bf16"


def _slow_passes(server, seconds: float):
    """Make each forward pass of the default encoder take at least `seconds`; returns
    the list of passes (texts) it records."""
    _, batcher = server.server.core.encoder("default")
    real, passes = batcher._encode, []

    def slow(texts, **role):
        passes.append(list(texts))
        time.sleep(seconds)
        return real(texts, **role)

    batcher._encode = slow
    return passes


def _wait_for(condition, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def test_small_calls_are_served_between_the_passes_of_a_large_embed(make_server):
    server = make_server(batching={"max_batch_texts": 8})
    client = server.client()
    client.create_collection("docs")
    passes = _slow_passes(server, 0.05)
    done = {}

    def large():
        client.embed([f"text number {i}" for i in range(160)])  # 20 passes of 8
        done["large"] = time.monotonic()

    t = threading.Thread(target=large)
    t.start()
    _wait_for(lambda: len(passes) >= 2)
    vectors, _ = client.embed(["a small call"])
    done["small"] = time.monotonic()
    t.join(60)
    assert vectors.shape[0] == 1 and done["small"] < done["large"]
    assert max(len(p) for p in passes) <= 8
    assert ["a small call"] != passes[-1]  # it did not wait for the end of the large one


def test_stop_does_not_wait_for_a_large_request_past_the_grace(make_server):
    server = make_server(batching={"max_batch_texts": 4})
    client = server.client(retries=0)
    client.create_collection("docs")
    passes = _slow_passes(server, 0.05)
    outcome = {}

    def large():
        try:
            client.embed([f"text {i}" for i in range(1024)])  # 256 passes, >= 13 s
            outcome["large"] = "OK"
        except RpcFailed as exc:
            outcome["large"] = exc.code.name

    t = threading.Thread(target=large)
    t.start()
    _wait_for(lambda: len(passes) >= 2)
    t0 = time.monotonic()
    server.server.stop(grace=0.5)
    stopped = time.monotonic() - t0
    t.join(30)
    assert outcome["large"] in ("CANCELLED", "UNAVAILABLE", "DEADLINE_EXCEEDED")
    assert len(passes) < 256  # the remaining passes were dropped, not run
    assert stopped < 15  # grace + the pass in flight (+ the final snapshot), not 25 s
