"""Dynamic micro-batching of encode requests on worker threads of one encoder.

Callers (gRPC handler threads) submit lists of texts and wait on a future. Each worker
builds one forward pass at a time from the jobs waiting *now*:

- **Budget, not count.** A pass holds at most ``max_batch_texts`` texts and at most
  ``max_batch_tokens`` padded tokens (texts x the longest text's tokens, measured by
  ``measure`` on the submitting thread, in parallel with the pass in flight), so
  forty short queries share a pass that two 512-token documents would fill.
- **No delay at low load.** A worker never waits for company unless ``max_wait_ms``
  > 0: a lone request is encoded at once by an idle worker; requests that arrive while
  passes run form the next pass together (that is where the batching comes from under
  load).
- **Several passes at once** (``workers`` > 1, the service's ``encoder_threads: auto``):
  with one torch thread per pass, a second pass uses a second core without splitting
  one pass's small matrix products over threads that wait for each other. While one
  worker encodes, the next worker takes the requests that arrived meanwhile. Workers
  share one line, so every rule here holds across them (a large request's passes may
  run on two workers at once).
- **No tiny second passes.** While another worker's pass runs, an idle worker starts
  only once ``min_parallel_tokens`` tokens wait (a pass of one short query costs ~3x
  per query what a pass of eight does); fewer wait for the running pass to end, as they
  would with one worker. With no pass running a request never waits.
- **Large requests are split and interleaved.** A job larger than the budget is cut
  into passes (its texts in length order, so each pass pads little); after each pass
  a partly done job goes to the back of the line, so small calls that arrived behind
  a 1,024-text Embed are served between its passes instead of after it.
- **Cancellation between passes.** ``alive()`` of every job is checked before each of
  its passes; a caller that has gone away (deadline passed, client cancelled, server
  stopping) costs at most the pass in flight.
- **One role per pass.** A job may carry a role ("query" or "document": the encoder
  prepends that role's prompt); a pass only combines jobs of the same role and passes
  it as ``role=`` (jobs without a role call the encode function with the texts only).
- **Shutdown.** ``close()`` fails every job still waiting with UNAVAILABLE and returns
  once the pass in flight (bounded by the budget) is done.

With batching disabled each pass holds one job's texts only (still split by budget);
the workers still run passes side by side, as a server that encodes each request on
its own thread would (the fair baseline: batching off uses the same cores).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ranksearch.errors import DeadlineExceeded, Unavailable

EncodeFn = Callable[..., np.ndarray]  # (texts[, role=...]) -> (n, dim) float32
MeasureFn = Callable[[list[str]], list[int]]  # texts -> tokens per text


def estimate_tokens(texts: list[str]) -> list[int]:
    """Fallback measure when the encoder has no tokenizer: ~4 characters per token."""
    return [2 + len(t) // 4 for t in texts]


@dataclass(eq=False)
class _Job:
    texts: list[str]
    alive: Callable[[], bool]
    role: str | None = None                          # "query"/"document": the prompt to prepend
    future: Future = field(default_factory=Future)
    order: list[int] = field(default_factory=list)   # text indices, shortest first
    tokens: list[int] = field(default_factory=list)  # tokens per text
    planned: int = 0                                 # texts of `order` handed to passes so far
    done: int = 0                                    # texts encoded so far
    started: bool = False                            # future set running
    rows: np.ndarray | None = None                   # (n, dim) once the first pass is back


class MicroBatcher:
    """Worker threads that encode queued jobs, several jobs per forward pass."""

    def __init__(self, encode: EncodeFn, *, enabled: bool = True, max_wait_ms: float = 0.0,
                 max_batch_texts: int = 64, max_batch_tokens: int = 8192,
                 measure: MeasureFn = estimate_tokens, name: str = "encoder",
                 on_batch: Callable[[int, int], None] | None = None, workers: int = 1,
                 min_parallel_tokens: int = 0):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._encode = encode
        self._measure = measure
        self.enabled = enabled
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_batch_texts = max_batch_texts
        self.max_batch_tokens = max_batch_tokens
        self.min_parallel_tokens = min_parallel_tokens
        self._on_batch = on_batch  # (jobs, texts) per forward pass, for metrics
        self._cond = threading.Condition()  # guards _line, _closing and every job's counters
        self._line: deque[_Job] = deque()  # jobs with texts not yet handed to a pass
        self._closing = False
        self._running = 0  # passes in flight
        self._threads = [threading.Thread(target=self._run, name=f"batcher-{name}" + (f"-{i}" if i else ""),
                                          daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    @property
    def workers(self) -> int:
        return len(self._threads)

    @property
    def depth(self) -> int:
        """Jobs waiting or partly done (queue depth gauge)."""
        return len(self._line)

    def submit(self, texts: Sequence[str], alive: Callable[[], bool] = lambda: True,
               role: str | None = None) -> Future:
        job = _Job(list(texts), alive, role)
        if not self._closing:
            # Measured here, on the caller's thread, while the workers' passes run (a
            # forward pass releases the GIL): the workers only plan and encode.
            job.tokens = self._measure(job.texts)
            job.order = sorted(range(len(job.texts)), key=job.tokens.__getitem__)
        with self._cond:
            if self._closing:
                job.future.set_exception(Unavailable("", "the server is shutting down"))
                return job.future
            self._line.append(job)
            self._cond.notify()  # one idle worker starts at once
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

    def close(self, timeout: float = 30.0) -> None:
        """Fail every waiting job (UNAVAILABLE), finish the passes in flight, stop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=timeout)
        with self._cond:
            while self._line:
                job = self._line.popleft()
                if not job.future.done() and (job.started or job.future.set_running_or_notify_cancel()):
                    job.future.set_exception(Unavailable("", "the server is shutting down"))

    # ---------------------------------------------------------------- workers

    def _ready(self) -> bool:
        """A pass may start now: work waits, and no other pass runs (low load: at once)
        or enough tokens wait to make a second pass worth a core (see the module doc)."""
        if not self._line:
            return False
        if not self._running or not self.enabled:
            return True
        waiting = 0
        for job in self._line:
            for i in job.order[job.planned:]:
                waiting += job.tokens[i]
                if waiting >= self.min_parallel_tokens:
                    return True
        return False

    def _wait_for_work(self) -> bool:
        """Block until a pass may start (no delay at low load; max_wait_ms if set). False on close."""
        with self._cond:
            while not self._ready() and not self._closing:
                self._cond.wait()
            if self._closing:
                return False
        if self.enabled and self.max_wait_s > 0:
            time.sleep(self.max_wait_s)
        return True

    def _usable(self, job: _Job) -> bool:
        """Start the job (first pass) or re-check its caller (later passes)."""
        if job.future.done():  # failed by another worker's pass, or its caller gave up
            return False
        if not job.started:
            job.started = True
            if not job.future.set_running_or_notify_cancel():
                return False
        if not job.alive():
            job.future.set_exception(DeadlineExceeded("", "client gave up before encoding finished"))
            return False
        return True

    def _plan(self) -> list[tuple[_Job, list[int]]]:
        """The next pass: [(job, text indices)] within the budget. Jobs not yet begun go
        first (in arrival order), then partly done ones (in line order). Called with
        the lock held; the planned texts leave the line."""
        plan, n, longest, role = [], 0, 0, ...
        for job in sorted(self._line, key=lambda j: j.planned > 0):
            if not self._usable(job):
                self._line.remove(job)
                continue
            if role is not ... and job.role != role:
                continue  # one role (prompt) per pass; this job goes in a later one
            role = job.role
            take = []
            for i in job.order[job.planned:]:
                width = max(longest, job.tokens[i])
                if n and ((n + 1) > self.max_batch_texts or (n + 1) * width > self.max_batch_tokens):
                    break
                take.append(i)
                n, longest = n + 1, width
            if take:
                plan.append((job, take))
                job.planned += len(take)
                self._line.remove(job)
                if job.planned < len(job.texts):
                    self._line.append(job)  # to the back: others go first next pass
            if job.planned < len(job.texts) or not self.enabled:
                break  # budget full (or one job per pass)
        return plan

    def _run(self) -> None:
        while self._wait_for_work():
            with self._cond:
                if self._closing:  # close() came during max_wait_ms
                    return
                plan = self._plan()
                self._running += bool(plan)
                if self._line:
                    self._cond.notify()  # work left (a split request, another role): an idle worker may take it
            if not plan:
                continue
            try:
                self._pass(plan)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()  # workers waiting for "enough" may start now

    def _pass(self, plan: list[tuple[_Job, list[int]]]) -> None:
        texts = [plan_job.texts[i] for plan_job, idx in plan for i in idx]
        role = plan[0][0].role  # one role per pass (see _plan)
        try:
            vectors = self._encode(texts) if role is None else self._encode(texts, role=role)  # (n, dim)
        except BaseException as exc:  # hand the failure to every caller of this pass
            with self._cond:
                for job, _ in plan:
                    if job in self._line:
                        self._line.remove(job)
                    if not job.future.done():
                        job.future.set_exception(exc)
            return
        if self._on_batch:
            self._on_batch(len(plan), len(texts))
        start, finished = 0, []
        with self._cond:
            for job, idx in plan:
                rows, start = vectors[start:start + len(idx)], start + len(idx)
                if job.future.done():
                    continue  # its caller gave up, or another pass of it failed
                if job.rows is None:
                    job.rows = np.empty((len(job.texts), vectors.shape[1]), dtype=vectors.dtype)
                job.rows[idx] = rows
                job.done += len(idx)
                if job.done == len(job.texts):
                    finished.append(job)
        for job in finished:  # wakes the callers: outside the lock the other workers plan with
            job.future.set_result(job.rows)
