"""Dynamic micro-batching of encode requests on one worker thread per encoder.

Callers (gRPC handler threads) submit lists of texts and wait on a future; the worker
takes the first waiting job, then keeps collecting jobs until ``max_batch_texts``
texts are gathered or ``max_wait_ms`` has passed since that first job, encodes them
all in one forward pass and hands each caller its rows. With batching disabled each
job is encoded on its own (still on the worker thread, never on a gRPC thread).

Jobs whose caller has gone away (deadline passed, client cancelled) are dropped
before encoding: ``alive()`` is checked when the job is taken from the queue.

A job may carry a role ("query" or "document": the encoder prepends that role's
prompt); one forward pass only combines jobs of the same role, and the role is passed
to the encode function as ``role=``. Jobs without a role call it with the texts only.
"""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ranksearch.errors import DeadlineExceeded

EncodeFn = Callable[..., np.ndarray]  # (texts[, role=...]) -> (n, dim) float32


@dataclass
class _Job:
    texts: list[str]
    alive: Callable[[], bool]
    role: str | None = None
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """One worker thread that encodes queued jobs, several jobs per forward pass."""

    def __init__(self, encode: EncodeFn, *, enabled: bool = True, max_wait_ms: float = 2.0,
                 max_batch_texts: int = 64, name: str = "encoder",
                 on_batch: Callable[[int, int], None] | None = None):
        self._encode = encode
        self.enabled = enabled
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_batch_texts = max_batch_texts
        self._on_batch = on_batch  # (jobs, texts) per forward pass, for metrics
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._carry: _Job | None = None  # a job that did not fit the previous batch
        self._thread = threading.Thread(target=self._run, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Jobs waiting (queue depth gauge)."""
        return self._queue.qsize() + (self._carry is not None)

    def submit(self, texts: Sequence[str], alive: Callable[[], bool] = lambda: True,
               role: str | None = None) -> Future:
        job = _Job(list(texts), alive, role)
        self._queue.put(job)
        return job.future

    def encode(self, texts: Sequence[str], alive: Callable[[], bool] = lambda: True,
               timeout: float | None = None, role: str | None = None) -> np.ndarray:
        """Submit and wait: (n, dim). Raises DeadlineExceeded if the caller gave up."""
        if not texts:
            raise ValueError("encode() needs at least one text")
        future = self.submit(texts, alive, role)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            future.cancel()
            raise DeadlineExceeded("", "deadline passed while waiting for the encoder") from None

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    # ----------------------------------------------------------------- worker

    def _next_batch(self) -> list[_Job] | None:
        first = self._carry or self._queue.get()
        self._carry = None
        if first is None:
            return None
        batch, n = [first], len(first.texts)
        if not self.enabled:
            return batch
        until = time.monotonic() + self.max_wait_s
        while n < self.max_batch_texts:
            remaining = until - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._queue.put(None)  # deliver the shutdown after this batch
                break
            if n + len(job.texts) > self.max_batch_texts or job.role != first.role:
                self._carry = job
                break
            batch.append(job)
            n += len(job.texts)
        return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            live = []
            for job in batch:
                if not job.future.set_running_or_notify_cancel():
                    continue
                if not job.alive():
                    job.future.set_exception(DeadlineExceeded("", "client gave up before encoding"))
                    continue
                live.append(job)
            if not live:
                continue
            texts = [t for job in live for t in job.texts]
            try:
                role = live[0].role  # one role per batch (see _next_batch)
                vectors = self._encode(texts) if role is None else self._encode(texts, role=role)  # (n, dim)
            except BaseException as exc:  # hand the failure to every caller of this batch
                for job in live:
                    job.future.set_exception(exc)
                continue
            if self._on_batch:
                self._on_batch(len(live), len(texts))
            start = 0
            for job in live:
                job.future.set_result(vectors[start:start + len(job.texts)])
                start += len(job.texts)
