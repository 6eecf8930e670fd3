"""Shadow traffic: a candidate variant answers a copy of some live searches after the
real response has gone out, and the two answers are compared.

The handler only enqueues (``offer``); one worker thread runs the shadow search.
The queue is bounded: when it is full the copy is dropped and counted, so shadowing
never delays a response and never grows memory under load. Each comparison
(overlap@k, Kendall's tau on the shared ids, latency of both) goes to the bounded
shadow log and to the counters shown in Stats and Prometheus.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ranksearch.evaluation.online import kendall_tau, overlap_at_k
from ranksearch.service.logs import get_logger


@dataclass(frozen=True)
class ShadowJob:
    collection: str
    query: str
    primary: str
    shadow: str
    primary_ids: list[str]
    primary_ms: float
    run: Callable[[], list[str]]  # the shadow search: returns its ids


class ShadowRunner:
    def __init__(self, record: Callable[..., None], capacity: int = 256):
        self._record = record
        self._queue: queue.Queue[ShadowJob | None] = queue.Queue(maxsize=capacity)
        self.counts = {"done": 0, "dropped": 0, "failed": 0}
        self._lock = threading.Lock()
        self._pending = 0  # offered and not yet finished
        self._done = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._loop, name="shadow", daemon=True)
        self._thread.start()

    def _count(self, outcome: str, finished: bool = False) -> None:
        with self._lock:
            self.counts[outcome] += 1
            if finished:
                self._pending -= 1
                self._done.notify_all()

    def offer(self, job: ShadowJob) -> bool:
        """Queue a shadow search; False (and counted as dropped) when the queue is full."""
        with self._lock:
            self._pending += 1
        try:
            self._queue.put_nowait(job)
            return True
        except queue.Full:
            self._count("dropped", finished=True)
            return False

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                t0 = time.perf_counter()
                ids = job.run()
                ms = (time.perf_counter() - t0) * 1000.0
                k = len(job.primary_ids)
                self._record(job.collection, job.primary, job.shadow,
                             overlap_at_k(job.primary_ids, ids, k), kendall_tau(job.primary_ids, ids),
                             job.primary_ms, ms)
                self._count("done", finished=True)
            except Exception:  # a shadow failure never reaches a client
                get_logger().warning("shadow search failed", exc_info=True,
                                     extra={"collection": job.collection, "variant": job.shadow})
                self._count("failed", finished=True)

    def idle(self, timeout: float = 10.0) -> bool:
        """Wait until every offered job has finished (tests, benchmarks)."""
        with self._lock:
            return self._done.wait_for(lambda: self._pending == 0, timeout=timeout)

    def close(self) -> None:
        try:
            self._queue.put(None, timeout=1.0)
        except queue.Full:
            pass
        self._thread.join(timeout=5)
