"""MicroBatcher: padded-token budget, splitting and interleaving of large requests,
cancellation between passes, shutdown."""
import threading

import numpy as np
import pytest

from ranksearch.errors import Unavailable
from ranksearch.service.batcher import MicroBatcher
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
