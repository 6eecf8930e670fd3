"""In-memory state of one collection: what searches read.

It mirrors SQLite's live documents (seq -> id and metadata, id -> seq, metadata
postings for filters) and holds one VariantIndex per variant. The writer changes it
only under ``lock.write()`` and only after the SQLite transaction committed, one
whole batch at a time; searches read it under ``lock.read()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ranksearch.indexer.faiss_index import VariantIndex
from ranksearch.indexer.lexical import LexicalConfig
from ranksearch.indexer.request import SearchDefaults
from ranksearch.indexer.rwlock import RWLock
from ranksearch.indexer.snapshot import SnapshotInfo
from ranksearch.indexer.types import Document, VariantSpec


@dataclass
class CollectionState:
    name: str
    default_variant: str
    specs: dict[str, VariantSpec]
    #: the lexical index's config and the defaults of requests (fixed at creation)
    lexical: LexicalConfig = field(default_factory=LexicalConfig)
    defaults: SearchDefaults = field(default_factory=SearchDefaults)
    lock: RWLock = field(default_factory=RWLock)
    by_seq: dict[int, tuple[str, dict[str, str]]] = field(default_factory=dict)
    by_id: dict[str, int] = field(default_factory=dict)
    postings: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    indexes: dict[str, VariantIndex] = field(default_factory=dict)
    snapshots: dict[str, SnapshotInfo | None] = field(default_factory=dict)
    #: variants changed since their last snapshot
    dirty: set[str] = field(default_factory=set)
    #: variants whose main index a background thread is rebuilding -> why
    maintaining: dict[str, str] = field(default_factory=dict)
    #: variants added to a live collection and still being filled: an upsert may
    #: leave their vector out (the background build adds it)
    partial: set[str] = field(default_factory=set)

    # -- documents (write lock held) --------------------------------------------------------
    def add_doc(self, seq: int, doc_id: str, metadata: dict[str, str]) -> None:
        self.by_seq[seq] = (doc_id, metadata)
        self.by_id[doc_id] = seq
        for item in metadata.items():
            self.postings.setdefault(item, set()).add(seq)

    def drop_doc(self, seq: int) -> None:
        doc_id, metadata = self.by_seq.pop(seq)
        if self.by_id.get(doc_id) == seq:
            del self.by_id[doc_id]
        for item in metadata.items():
            bucket = self.postings.get(item)
            if bucket is not None:
                bucket.discard(seq)
                if not bucket:
                    del self.postings[item]

    def apply_upsert(
        self, docs: list[Document], rows: list[tuple[int, int | None]], vectors: dict[str, np.ndarray]
    ) -> None:
        """docs with (new seq, replaced seq) from the committed transaction."""
        old = np.array([prev for _, prev in rows if prev is not None], dtype=np.int64)
        new = np.array([seq for seq, _ in rows], dtype=np.int64)
        for (seq, prev), doc in zip(rows, docs):
            if prev is not None:
                self.drop_doc(prev)
            self.add_doc(seq, doc.id, dict(doc.metadata))
        for name, index in self.indexes.items():
            index.remove(old)
            if name in vectors:  # a partial variant may lack this batch (see `partial`)
                index.add(new, vectors[name])
        self.dirty.update(self.indexes)

    def apply_delete(self, removed: list[tuple[str, int]]) -> None:
        seqs = np.array([seq for _, seq in removed], dtype=np.int64)
        for seq in seqs.tolist():
            self.drop_doc(seq)
        for index in self.indexes.values():
            index.remove(seqs)
        self.dirty.update(self.indexes)

    # -- reads (read lock held) --------------------------------------------------------------
    def allowed(self, flt: dict[str, str]) -> np.ndarray:
        """Sorted seqs of the documents matching every key=value of `flt`."""
        buckets = [self.postings.get(item, set()) for item in flt.items()]
        buckets.sort(key=len)
        match = set(buckets[0])
        for bucket in buckets[1:]:
            match &= bucket
        return np.array(sorted(match), dtype=np.int64)
