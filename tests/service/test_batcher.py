"""MicroBatcher: padded-token budget, splitting and interleaving of large requests,
cancellation between passes, shutdown, several workers; the encoder_threads setting."""
import threading

import numpy as np
import pytest

from ranksearch.errors import ConfigError, Unavailable
from ranksearch.client import Document
from ranksearch.service.batcher import MicroBatcher
from ranksearch.service.config import ServiceConfig, from_dict, usable_cores
from ranksearch.service.errors import DeadlineExceeded


def tokens(texts):
    return [len(t) for t in texts]  # one token per character, for exact budgets


class Gated:
    """An encode function that records each pass and can hold the worker."""

    def __init__(self):
        self.passes, self.gate, self.entered = [], threading.Event(), threading.Event()
        self.gate.set()

    def __call__(self, texts):
        self.passes.append(list(texts))
        self.entered.set()
        self.gate.wait(30)
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)  # (n, 2)

    def hold(self, batcher):
        """Occupy the worker with one job until release(); returns that job's future."""
        self.gate.clear()
        self.entered.clear()
        blocker = batcher.submit(["x"])
        assert self.entered.wait(10)
        return blocker


def test_a_pass_never_exceeds_the_padded_token_budget():
    enc = Gated()
    b = MicroBatcher(enc, max_batch_texts=100, max_batch_tokens=40, measure=tokens)
    blocker = enc.hold(b)
    texts = ["a" * n for n in (3, 18, 4, 9, 2, 7, 20, 5)]
    futures = [b.submit([t]) for t in texts]
    enc.gate.set()
    blocker.result(10)
    for f, t in zip(futures, texts):
        assert f.result(10)[0, 0] == len(t)  # each caller gets its own row
    for p in enc.passes[1:]:
        assert len(p) * max(map(len, p)) <= 40 or len(p) == 1
    assert len(enc.passes) > 2  # the budget, not the text count, split the waiting work
    b.close()


def test_large_request_is_split_and_small_calls_go_between_its_passes():
    enc = Gated()
    b = MicroBatcher(enc, max_batch_texts=10, max_batch_tokens=10_000, measure=tokens)
    blocker = enc.hold(b)
    big_texts = [f"doc {i:03d}" for i in range(45)]
    big = b.submit(big_texts)
    small = b.submit(["small query"])
    enc.gate.set()
    blocker.result(10)
    rows = big.result(10)
    assert rows.shape == (45, 2) and small.result(10).shape == (1, 2)
    passes = enc.passes[1:]
    assert max(map(len, passes)) <= 10 and len(passes) == 5  # 46 texts, 10 per pass
    where = next(i for i, p in enumerate(passes) if "small query" in p)
    assert 0 < where < len(passes) - 1  # served between the large request's passes


def test_caller_that_gives_up_stops_its_remaining_passes():
    enc = Gated()
    b = MicroBatcher(enc, max_batch_texts=4, measure=tokens)
    checks = []

    def alive():  # the caller waits through two passes, then gives up
        checks.append(1)
        return len(checks) <= 2

    blocker = enc.hold(b)
    job = b.submit([f"t{i}" for i in range(20)], alive=alive)
    enc.gate.set()
    blocker.result(10)
    with pytest.raises(DeadlineExceeded):
        job.result(10)
    assert len(enc.passes) == 1 + 2  # the blocker, then two of the five passes
    b.close()


def test_close_fails_waiting_jobs_and_returns_after_the_pass_in_flight():
    enc = Gated()
    b = MicroBatcher(enc, max_batch_texts=2, measure=tokens)
    blocker = enc.hold(b)
    waiting = b.submit(["a", "b", "c"])
    closer = threading.Thread(target=b.close)
    closer.start()
    enc.gate.set()
    closer.join(10)
    assert not closer.is_alive() and blocker.result(1).shape == (1, 2)
    with pytest.raises(Unavailable):
        waiting.result(1)
    with pytest.raises(Unavailable):
        b.submit(["late"]).result(1)


def test_texts_are_measured_on_the_callers_thread_while_a_pass_runs():
    """Tokenising for the budget happens in submit(), so the worker only plans and
    encodes; a tokenizer failure reaches that caller and the worker keeps serving."""
    enc = Gated()
    measured_on = []

    def measure(texts):
        measured_on.append(threading.current_thread().name)
        if "bad" in texts:
            raise ValueError("cannot tokenise")
        return tokens(texts)

    batcher = MicroBatcher(enc, measure=measure, name="m")
    try:
        blocker = enc.hold(batcher)  # a pass in flight
        waiting = batcher.submit(["ab", "c"])
        assert measured_on == [threading.current_thread().name] * 2  # measured before the pass ended
        with pytest.raises(ValueError, match="cannot tokenise"):
            batcher.submit(["bad"])
        enc.gate.set()
        blocker.result(10)
        np.testing.assert_array_equal(waiting.result(10)[:, 0], [2.0, 1.0])
        assert "batcher-m" not in measured_on
    finally:
        batcher.close()


# ------------------------------------------------------------- several workers

class Lanes:
    """An encode function for several workers: a pass whose first text is "hold"
    blocks until release(); every pass is recorded with how many passes ran at once."""

    def __init__(self):
        self.passes, self.lock, self.running, self.most = [], threading.Lock(), 0, 0
        self.gate, self.holds = threading.Event(), threading.Semaphore(0)

    def __call__(self, texts):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.passes.append(list(texts))
        try:
            if texts[0] == "hold":
                self.holds.release()
                assert self.gate.wait(30)
            return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)  # (n, 2)
        finally:
            with self.lock:
                self.running -= 1


def test_a_lone_request_is_encoded_at_once_by_an_idle_worker_while_another_pass_runs():
    """No batching delay at low load, and no waiting behind a pass in flight: with a
    second worker the request is answered while the first pass is still held."""
    enc = Lanes()
    b = MicroBatcher(enc, workers=2, measure=tokens)
    try:
        held = b.submit(["hold"])
        assert enc.holds.acquire(timeout=10)
        assert b.submit(["lone"]).result(10)[0, 0] == 4  # returns before the held pass ends
        assert not held.done() and enc.most == 2
        enc.gate.set()
        assert held.result(10)[0, 0] == 4
    finally:
        enc.gate.set()
        b.close()


@pytest.mark.parametrize("min_parallel_tokens", [0, 1000])
def test_the_default_batcher_never_sleeps_before_a_pass(monkeypatch, min_parallel_tokens):
    """max_wait_ms 0 (the default): a worker that finds a job while no pass runs
    encodes it; it never waits for company (the only sleep in the worker is
    max_wait_ms's), whatever min_parallel_tokens says."""
    import ranksearch.service.batcher as batcher_module

    sleeps = []
    monkeypatch.setattr(batcher_module, "time", type("T", (), {"sleep": staticmethod(sleeps.append)}))
    enc = Lanes()
    b = MicroBatcher(enc, workers=2, measure=tokens, min_parallel_tokens=min_parallel_tokens)
    for text in ("one", "two", "three"):
        assert b.submit([text]).result(10)[0, 0] == len(text)
    b.close()
    assert sleeps == [] and enc.passes == [["one"], ["two"], ["three"]]


def test_beside_a_running_pass_a_second_pass_starts_only_once_enough_tokens_wait():
    """min_parallel_tokens: one short text waits (no one-text pass beside the held
    one); when the waiting texts reach the threshold, the idle worker encodes them
    together while the first pass is still held."""
    enc = Lanes()
    b = MicroBatcher(enc, workers=2, measure=tokens, min_parallel_tokens=10)
    try:
        held = b.submit(["hold"])
        assert enc.holds.acquire(timeout=10)
        small = b.submit(["s"])        # 1 token waiting: below 10
        more = b.submit(["b" * 9])     # 10 tokens waiting: a second pass starts
        assert small.result(10)[0, 0] == 1 and more.result(10)[0, 0] == 9
        assert not held.done() and enc.passes[1] == ["s", "b" * 9]
    finally:
        enc.gate.set()
        b.close()


def test_texts_waiting_below_the_threshold_start_when_the_running_pass_ends():
    enc = Lanes()
    b = MicroBatcher(enc, workers=2, measure=tokens, min_parallel_tokens=10)
    try:
        held = b.submit(["hold"])
        assert enc.holds.acquire(timeout=10)
        small = b.submit(["s"])
        enc.gate.set()
        assert held.result(10)[0, 0] == 4 and small.result(10)[0, 0] == 1
        assert enc.passes == [["hold"], ["s"]]
    finally:
        enc.gate.set()
        b.close()


def test_a_split_request_runs_on_two_workers_at_once_and_its_rows_stay_in_order():
    enc = Lanes()
    b = MicroBatcher(enc, workers=2, max_batch_texts=4, measure=tokens)
    try:
        blocker = b.submit(["hold"])
        assert enc.holds.acquire(timeout=10)
        texts = ["a" * n for n in (5, 1, 7, 3, 2, 8, 6, 4, 9, 10)]
        rows = b.submit(texts).result(10)  # served by the second worker alone, pass after pass
        np.testing.assert_array_equal(rows[:, 0], [len(t) for t in texts])
        assert not blocker.done()
        enc.gate.set()
        blocker.result(10)
        assert [len(p) for p in enc.passes[1:]] == [4, 4, 2]
    finally:
        enc.gate.set()
        b.close()


def test_the_rest_of_a_split_request_wakes_an_idle_worker():
    """A worker that leaves work in the line after planning its pass hands it on: the
    two passes of one request run at once on two workers."""
    enc = Lanes()
    b = MicroBatcher(enc, workers=2, max_batch_texts=1, measure=tokens)
    try:
        job = b.submit(["hold", "hold"])  # one submit (one wake-up), two passes
        assert enc.holds.acquire(timeout=10) and enc.holds.acquire(timeout=10)
        enc.gate.set()
        np.testing.assert_array_equal(job.result(10), [[4, 1], [4, 1]])
        assert enc.most == 2
    finally:
        enc.gate.set()
        b.close()


def test_batching_off_runs_one_job_per_pass_on_every_worker():
    """enabled=False is the one-forward-per-request comparison: one job per pass, and
    the workers run such passes side by side (the same cores as batching on)."""
    enc = Lanes()
    b = MicroBatcher(enc, enabled=False, workers=2, measure=tokens)
    held = [b.submit(["hold"]), b.submit(["hold"])]
    assert enc.holds.acquire(timeout=10) and enc.holds.acquire(timeout=10)  # two passes at once
    futures = [b.submit([f"t{i}"]) for i in range(40)]
    enc.gate.set()
    for i, f in enumerate(futures):
        assert f.result(10)[0, 0] == len(f"t{i}")
    assert [f.result(10)[0, 0] for f in held] == [4, 4]
    b.close()
    assert enc.most == 2 and all(len(p) == 1 for p in enc.passes)


def test_close_with_several_workers_fails_waiting_jobs_and_finishes_passes_in_flight():
    enc = Lanes()
    b = MicroBatcher(enc, workers=2, max_batch_texts=1, measure=tokens)
    held = [b.submit(["hold"]), b.submit(["hold"])]  # one pass each: one per worker
    assert enc.holds.acquire(timeout=10) and enc.holds.acquire(timeout=10)  # both workers busy
    waiting = b.submit(["w"])
    closer = threading.Thread(target=b.close)
    closer.start()
    enc.gate.set()
    closer.join(10)
    assert not closer.is_alive() and [f.result(1)[0, 0] for f in held] == [4, 4]
    with pytest.raises(Unavailable):
        waiting.result(1)
    with pytest.raises(Unavailable):
        b.submit(["late"]).result(1)


# ------------------------------------------------------- config: encoder_threads

@pytest.mark.parametrize("value", ["two", "", 0, -1, 1.5, True, None, [1]])
def test_encoder_threads_is_auto_or_a_positive_integer(value):
    with pytest.raises(ConfigError) as info:
        from_dict(ServiceConfig, {"encoder_threads": value})
    assert info.value.field == "encoder_threads"


@pytest.mark.parametrize("value", [-1, "x", 1.5, None])
def test_min_parallel_tokens_is_a_non_negative_integer(value):
    with pytest.raises(ConfigError) as info:
        from_dict(ServiceConfig, {"batching": {"min_parallel_tokens": value}})
    assert info.value.field == "batching.min_parallel_tokens"


def test_encoder_threads_auto_is_one_thread_per_pass_and_one_pass_per_core():
    auto = ServiceConfig()
    assert auto.encoder_threads == "auto"
    assert (auto.torch_threads, auto.encoder_workers) == (1, usable_cores())
    two = from_dict(ServiceConfig, {"encoder_threads": 2})  # the integer keeps its old meaning
    assert (two.torch_threads, two.encoder_workers) == (2, 1)


def test_the_server_gives_each_encoder_one_worker_per_core_by_default(make_server):
    server = make_server(encoder_threads="auto")
    server.client().create_collection("docs")
    server.client().upsert("docs", [Document("a", "a text about search")])
    assert server.client().search("search").hits[0].id == "a"
    _, batcher = server.server.core.encoder("default")
    assert batcher.workers == usable_cores() and batcher.min_parallel_tokens == 128


def test_batched_rows_on_several_workers_equal_each_text_encoded_alone(tiny_model):
    """The real encoder behind two workers: concurrent callers' rows, encoded in shared
    padded passes on both workers at once, equal each text encoded on its own."""
    from ranksearch.encoder import load_encoder

    emb = load_encoder(tiny_model)
    texts = [f"query {i} " + "about search " * (i % 5) for i in range(24)]
    alone = {t: emb.encode([t], role="query")[0] for t in texts}
    b = MicroBatcher(lambda batch, role: emb.encode(batch, role=role), workers=2, measure=emb.token_counts)
    try:
        results = {}

        def call(text):
            results[text] = b.encode([text], role="query")

        threads = [threading.Thread(target=call, args=(t,)) for t in texts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        b.close()
    for t in texts:
        np.testing.assert_allclose(results[t][0], alone[t], atol=1e-5)
