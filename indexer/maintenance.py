"""What the collections of one data directory share about their background work:
the count of background index rebuilds running (close() waits for them: FAISS
cannot be interrupted, and a process that exits while a thread is inside it aborts)
and the progress lines of a long rebuild."""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("ranksearch.indexer")


class BackgroundJobs:
    """Counts running background rebuilds, across every collection of one indexer."""

    def __init__(self) -> None:
        self._running = 0
        self._done = threading.Condition()

    @property
    def running(self) -> int:
        return self._running

    def started(self) -> None:
        with self._done:
            self._running += 1

    def finished(self) -> None:
        with self._done:
            self._running -= 1
            self._done.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until none is running; False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self._running == 0, timeout)


class Progress:
    """Log lines for a long job: done of total, elapsed and ETA (rate so far)."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.done, self.started = what, total, 0, time.perf_counter()

    def advance(self, n: int, item: str) -> None:
        self.done += n
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        log.info("%s: %s done; %d of %d vectors (%.0f%%), %.1f s elapsed, ETA %.0f s", self.what, item,
                 self.done, self.total, 100.0 * self.done / max(self.total, 1), elapsed, eta)
