"""Background build of a variant added to a live collection.

AddVariant registers the variant with an empty index; from then on every upsert
writes its vector too (the core encodes for every variant). This builder encodes the
documents that are still missing a vector, oldest first, in batches:

    loop: page = documents with seq > cursor and no vector for the variant
          encode page (the variant's model) -> put_vectors(..., expected_seqs)
          cursor = last seq; persist (done, total, cursor); throttle

``expected_seqs`` makes a batch skip a document that an upsert replaced while the
batch was being encoded: the replacement already carried the right vector. The
cursor is persisted after every batch, so a restart resumes where it stopped. When
a page comes back empty the builder checks that the variant holds a vector for every
document in the store (count equality); only then is the variant marked ready and
allowed to take traffic.

Throttling: after each batch, if the serving p95 of the collection's live variants
(over recent requests) is above ``max_p95_ms``, the builder pauses (doubling up to
2 s) before the next batch; below it, the pause shrinks back to zero.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

from ranksearch.service.logs import get_logger


class VariantBuilder:
    def __init__(self, *, indexer, collection: str, variant: str,
                 encode: Callable[[list[str]], np.ndarray],
                 progress: Callable[..., None], serving_p95: Callable[[], float],
                 batch: int = 64, max_p95_ms: float = 0.0, after_seq: int = 0,
                 on_done: Callable[[str, str, str], None] | None = None):
        self.indexer = indexer
        self.collection = collection
        self.variant = variant
        self._encode = encode
        self._progress = progress
        self._serving_p95 = serving_p95
        self.batch = batch
        self.max_p95_ms = max_p95_ms
        self.cursor = after_seq
        self._on_done = on_done
        self._stop = threading.Event()
        self.pause_s = 0.0
        self.state = "building"
        self.error = ""
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"build-{collection}/{variant}")

    def start(self) -> "VariantBuilder":
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def counts(self) -> tuple[int, int]:
        """(documents with a vector for the variant, documents in the collection)."""
        store = self.indexer.store
        return (store.count_vectors(self.collection, self.variant),
                store.count_documents(self.collection))

    def _run(self) -> None:
        log = get_logger()
        try:
            while not self._stop.is_set():
                page = self.indexer.documents_without_vector(self.collection, self.variant,
                                                             self.cursor, self.batch)
                if not page:
                    done, total = self.counts()
                    if done >= total:
                        break
                    self.cursor = 0  # a document slipped behind the cursor: sweep again
                    continue
                seqs = [int(r[0]) for r in page]
                vectors = self._encode([r[2] for r in page])
                self.indexer.put_vectors(self.collection, self.variant, [r[1] for r in page],
                                         vectors, expected_seqs=seqs)
                self.cursor = seqs[-1]
                done, total = self.counts()
                self._progress(state="building", done=done, total=total, after_seq=self.cursor)
                self._throttle()
            if self._stop.is_set():
                return  # resumed on the next start from the persisted cursor
            done, total = self.counts()
            self.state = "ready"
            self._progress(state="ready", done=done, total=total, after_seq=self.cursor)
            log.info("variant built", extra={"collection": self.collection, "variant": self.variant,
                                             "documents": done})
        except Exception as exc:
            if self._stop.is_set():
                return
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("building a variant failed", extra={"collection": self.collection,
                                                              "variant": self.variant})
            done, total = self.counts()
            self._progress(state="failed", done=done, total=total, after_seq=self.cursor,
                           error=self.error)
        if self._on_done:
            self._on_done(self.collection, self.variant, self.state)

    def _throttle(self) -> None:
        if self.max_p95_ms > 0 and self._serving_p95() > self.max_p95_ms:
            self.pause_s = min(2.0, max(0.05, self.pause_s * 2))
        else:
            self.pause_s = self.pause_s / 2 if self.pause_s > 0.05 else 0.0
        if self.pause_s:
            self._stop.wait(self.pause_s)
