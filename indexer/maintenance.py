"""Keeping one collection's main indexes fit, and what the collections of one data
dir share about it.

Training an IVF index, retraining one whose data outgrew its nlist, compacting an
HNSW graph full of tombstones and rebuilding one that grew hnsw_rebuild_growth times
insert by insert rebuild the variant's main index from its exact vectors
(``VariantIndex.maintenance_reason`` says when). Up to inline_maintenance_max vectors
this runs on the writer's thread (writes wait, searches go on). Above it, a
background thread copies the vectors under the writer, builds and trains the new
index holding no lock at all (writes and searches go on; the old index keeps
answering), then takes the writer again, adds the vectors written meanwhile and
drops the ones deleted meanwhile (ids are sequence numbers, so a set difference
finds both), and swaps it in under the collection's write lock. A rebuild that finds
its collection retired or its variant replaced is discarded.

``BackgroundJobs`` counts those threads across every collection: close() waits for
them (FAISS cannot be interrupted, and a process that exits while a thread is inside
it aborts), so the final snapshot holds their result.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ranksearch.indexer.faiss_index import VariantIndex

if TYPE_CHECKING:
    from ranksearch.indexer.collection import Collection

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


class Maintenance:
    """The main-index maintenance of one collection."""

    def __init__(self, collection: "Collection"):
        self.collection = collection
        #: variants whose main index a background thread is rebuilding -> why
        self.running: dict[str, str] = {}

    def check(self) -> None:
        """Rebuild the main index of every variant that needs it: small ones now,
        large ones in a background thread. Writer held."""
        c = self.collection
        cfg = c.shared.config
        for name, index in list(c.indexes.items()):
            if name in self.running:
                continue
            reason = index.maintenance_reason(cfg.tombstone_rebuild_ratio, cfg.hnsw_rebuild_growth,
                                              cfg.hnsw_rebuild_min)
            if reason is None:
                continue
            if index.count <= cfg.inline_maintenance_max:
                log.info("%s/%s: %s", c.name, name, reason)
                fresh = index.rebuilt()
                with c.lock.write():
                    c.indexes[name] = fresh
                    c.dirty.add(name)
                continue
            self.running[name] = reason
            c.shared.jobs.started()
            threading.Thread(target=self._in_background, args=(name, index),
                             name=f"ranksearch-maintain-{c.name}/{name}", daemon=True).start()

    def _still_current(self, name: str, index: VariantIndex) -> bool:
        """Whether a background rebuild started from `index` may still be swapped in."""
        c = self.collection
        return not c.retired and name in c.indexes and c.indexes[name].spec is index.spec

    def _in_background(self, name: str, started_from: VariantIndex) -> None:
        c = self.collection
        key, reason, writer = f"{c.name}/{name}", self.running.get(name, ""), c.shared.writer
        try:
            with writer:  # a stable copy: no write is half-applied
                if not self._still_current(name, started_from):
                    return
                index = c.indexes[name]
                ids, vecs = index.ids(), index.vectors()
            log.info("%s: %s, in the background (writes and searches go on)", key, reason)
            t0 = time.monotonic()
            main = index.build_main(ids, vecs)  # no lock held: the slow part
            del vecs
            with writer:
                if not self._still_current(name, index):
                    log.info("%s: background rebuild discarded (collection deleted or variant changed)", key)
                    return
                fresh = c.indexes[name].with_main(main, ids)  # catch up with the writes made meanwhile
                with c.lock.write():
                    c.indexes[name] = fresh
                    c.dirty.add(name)
            log.info("%s: background rebuild done in %.1f s (%d vectors)", key, time.monotonic() - t0, fresh.count)
        except Exception:  # the old index keeps serving; the next write tries again
            log.exception("%s: background rebuild failed", key)
        finally:
            with writer:
                self.running.pop(name, None)
            c.shared.jobs.finished()


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
