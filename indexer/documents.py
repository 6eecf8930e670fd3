"""The in-memory mirror of one collection's live documents: what searches read.

It mirrors SQLite's live documents: seq -> (id, metadata), id -> seq, and metadata
postings for filters. Its collection (indexer/collection.py) changes it only under
its write lock and only after the SQLite transaction committed, one whole batch at a
time; searches read it under the read lock.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np


class LiveDocuments:
    def __init__(self, rows: Iterable[tuple[int, str, dict[str, str]]] = ()):
        self.by_seq: dict[int, tuple[str, dict[str, str]]] = {}
        self.by_id: dict[str, int] = {}
        self.postings: dict[tuple[str, str], set[int]] = {}
        for seq, doc_id, metadata in rows:
            self.add(seq, doc_id, metadata)

    def __len__(self) -> int:
        return len(self.by_id)

    # -- writes (the collection's write lock held) ---------------------------------------------
    def add(self, seq: int, doc_id: str, metadata: dict[str, str]) -> None:
        self.by_seq[seq] = (doc_id, metadata)
        self.by_id[doc_id] = seq
        for item in metadata.items():
            self.postings.setdefault(item, set()).add(seq)

    def drop(self, seq: int) -> None:
        doc_id, metadata = self.by_seq.pop(seq)
        if self.by_id.get(doc_id) == seq:
            del self.by_id[doc_id]
        for item in metadata.items():
            bucket = self.postings.get(item)
            if bucket is not None:
                bucket.discard(seq)
                if not bucket:
                    del self.postings[item]

    # -- reads (the read lock held) -------------------------------------------------------------
    def allowed(self, flt: dict[str, str]) -> np.ndarray:
        """Sorted seqs of the documents matching every key=value of `flt`."""
        buckets = [self.postings.get(item, set()) for item in flt.items()]
        buckets.sort(key=len)
        match = set(buckets[0])
        for bucket in buckets[1:]:
            match &= bucket
        return np.array(sorted(match), dtype=np.int64)
