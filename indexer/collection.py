"""One collection of the embedded store: its documents' in-memory mirror, its
variants' FAISS indexes, its lock, its snapshots, its maintenance and its search.

The Indexer (indexer/indexer.py) is a registry of these: it opens the data dir,
creates, deletes and lists collections and routes each call to one. What the
collections of one data dir share -- the SQLite store, its single writer and the
count of background rebuilds -- comes in as one ``Shared``.

Locks
-----
- ``Shared.writer``: one SQLite writer connection, so one writer at a time across
  all collections: upsert, delete, put_vectors, variant changes, snapshots and
  rebuilds hold it. A write validates its whole batch and analyses its texts before
  taking it, writes the batch in one SQLite transaction, then -- under this
  collection's write lock -- commits it (the commit point: durable from here on, WAL
  + synchronous=FULL) and applies the whole batch in memory.
- ``Collection.lock``: this collection's readers-writer lock. Searches of the
  collection hold the read side (FAISS CPU indexes are safe to search concurrently;
  search knobs travel per call). The write side covers only a COMMIT (its fsync)
  and the in-memory apply, and the swap of a rebuilt index -- never a batch's
  inserts, never encoding, never an index being built. Another collection's lock is
  another object: nothing done to this collection blocks the searches of another.
- A call that waited for the writer while its collection was deleted, taken out of
  service or closed raises ``Retired``; the indexer resolves the name again.

Maintenance of the main indexes (training, retraining, compaction, one-pass
rebuilds; inline or in a background thread): indexer/maintenance.py.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ranksearch.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from ranksearch.indexer import lexical
from ranksearch.indexer import validation as v
from ranksearch.indexer.config import IndexerConfig
from ranksearch.indexer.documents import LiveDocuments
from ranksearch.indexer.faiss_index import VariantIndex, check_spec
from ranksearch.indexer.maintenance import BackgroundJobs, Maintenance, Progress
from ranksearch.indexer.recovery import build_from_store, recover_variant
from ranksearch.indexer.request import DENSE_MODES, LEXICAL_MODES, SearchDefaults, SearchRequest
from ranksearch.indexer.rwlock import RWLock
from ranksearch.indexer.search import run_search
from ranksearch.indexer.snapshot import SnapshotInfo, serialize, snapshot_path, write_snapshot
from ranksearch.indexer.store import Store
from ranksearch.indexer.types import CollectionInfo, Document, Hit, VariantSpec
from ranksearch.indexer.verify import verify_collection

log = logging.getLogger("ranksearch.indexer")


class Retired(Exception):
    """The collection was deleted, taken out of service or closed while the call
    waited for the writer; the indexer looks the name up again."""


@dataclass(frozen=True)
class Shared:
    """What the collections of one data dir share; the Indexer owns it."""

    data_dir: Path
    config: IndexerConfig
    store: Store
    #: the one writer (see "Locks" above); re-entrant
    writer: threading.RLock
    #: background rebuilds running, in every collection (close() waits for them)
    jobs: BackgroundJobs
    #: (collection, why): take a collection out of service (writer held)
    quarantine: Callable[[str, str], None]


class Collection:
    """One collection: built by ``create`` (new), ``recover`` (at open) or
    ``from_sqlite`` (an admin's Rebuild of an unavailable one); every method checks
    its own input and names the field at fault."""

    def __init__(self, shared: Shared, name: str, default_variant: str, specs: Sequence[VariantSpec],
                 lexical_config: lexical.LexicalConfig, defaults: SearchDefaults):
        self.shared = shared
        self.name = name
        self.default_variant = default_variant
        self.specs: dict[str, VariantSpec] = {s.name: s for s in specs}  # replaced, never mutated
        #: the lexical index's config and the defaults of requests (fixed at creation)
        self.lexical = lexical_config
        self.defaults = defaults
        self.lock = RWLock()
        self.docs = LiveDocuments()
        self.indexes: dict[str, VariantIndex] = {}
        self.snapshots: dict[str, SnapshotInfo | None] = {}
        #: variants changed since their last snapshot
        self.dirty: set[str] = set()
        self.maintenance = Maintenance(self)
        #: variants added to a live collection and still being filled: an upsert may
        #: leave their vector out (the background build adds it)
        self.partial: set[str] = set()
        #: deleted, out of service or closed (set under the writer): calls raise Retired
        self.retired = False

    # -- construction (writer held, or during open) -------------------------------------------------
    @classmethod
    def create(cls, shared: Shared, name: str, specs: Sequence[VariantSpec], default: str,
               lexical_config: lexical.LexicalConfig, defaults: SearchDefaults) -> "Collection":
        """A new, empty collection whose row SQLite has just stored."""
        c = cls(shared, name, default, specs, lexical_config, defaults)
        for spec in specs:
            c.indexes[spec.name] = VariantIndex(spec)
            c.snapshots[spec.name] = None
            c.dirty.add(spec.name)
        return c

    @classmethod
    def _stored(cls, shared: Shared, name: str, default: str, specs: list[VariantSpec],
                config: str) -> "Collection":
        """A stored collection, no index yet. Its configuration is checked against
        today's rules first: one stored by an older version may crash FAISS, so it is
        never handed to it."""
        for i, spec in enumerate(specs):
            check_spec(spec, f"variants[{i}]", trial=False)
        return cls(shared, name, default, specs, *lexical.decode_config(config))

    @classmethod
    def recover(cls, shared: Shared, name: str, default: str, specs: list[VariantSpec], config: str,
                notes: dict[str, str]) -> "Collection":
        """A stored collection from its snapshots replayed onto SQLite (indexer/recovery.py);
        what happened to each variant goes to `notes`."""
        c = cls._stored(shared, name, default, specs, config)
        c.docs = LiveDocuments(shared.store.live_documents(name))
        for spec in specs:
            got = recover_variant(shared.store, shared.data_dir, name, spec)
            notes[f"{name}/{spec.name}"] = got.note
            c.indexes[spec.name], c.snapshots[spec.name] = got.index, got.snapshot
            if got.changed:
                c.dirty.add(spec.name)
        return c

    @classmethod
    def from_sqlite(cls, shared: Shared, name: str, default: str, specs: list[VariantSpec],
                    config: str) -> "Collection":
        """A stored collection rebuilt from SQLite alone, snapshots ignored (an admin's
        Rebuild of an unavailable collection)."""
        c = cls._stored(shared, name, default, specs, config)
        c.rebuild()
        c.maintain()
        return c

    def retire(self) -> None:
        """Deleted, out of service or closed: waiting calls raise Retired and running
        background rebuilds are discarded. Writer held; waits for running searches."""
        with self.lock.write():
            self.retired = True

    def _check_live(self) -> None:
        """Writer held: raise Retired if the collection went away meanwhile."""
        if self.retired:
            raise Retired(self.name)

    @property
    def by_id(self) -> dict[str, int]:
        return self.docs.by_id

    # -- description -----------------------------------------------------------------------------
    def info(self) -> CollectionInfo:
        with self.lock.read():
            return CollectionInfo(self.name, list(self.specs.values()), self.default_variant, len(self.docs),
                                  self.lexical, self.defaults)

    def variant(self, variant: str | None, field: str = "variant") -> str:
        """The variant's name (None or '' is the default variant); NotFound naming `field`."""
        name = self.default_variant if variant is None or variant == "" else variant
        if name not in self.specs:
            raise NotFound(field, f"collection {self.name!r} has no variant {name!r} "
                                  f"(it has: {', '.join(self.specs)})")
        return name

    # -- reads ---------------------------------------------------------------------------------------
    def get(self, ids: list[str]) -> list[Document]:
        """The documents that exist among `ids`, in the order asked."""
        cfg = self.shared.config
        ids = v.check_ids(ids, "ids", cfg.max_id_length, cfg.max_batch)
        found = self.shared.store.get(self.name, ids)
        return [found[i] for i in ids if i in found]

    def unchanged(self, docs: list[Document]) -> set[str]:
        """Ids of `docs` already stored with the same text and metadata and a vector for
        every variant (see Store.unchanged). Read without the writer: a concurrent
        write to the same id orders after it."""
        return self.shared.store.unchanged(self.name, docs, list(self.specs))

    def documents_without_vector(self, variant: str, after_seq: int, limit: int) -> list[tuple[int, str, str]]:
        """(seq, id, text) of documents that still lack ``variant``'s vector (backfill)."""
        return self.shared.store.documents_without_vector(self.name, self.variant(variant), after_seq, limit)

    def search(self, request: SearchRequest, vectors: np.ndarray | None = None,
               texts: Sequence[str] | None = None) -> list[list[Hit]]:
        """Top-k per query; see Indexer.search."""
        cfg = self.shared.config
        if not isinstance(request, SearchRequest):
            raise InvalidArgument("request", f"must be a SearchRequest, got {type(request).__name__}")
        request = request.check_limits(cfg.max_k, cfg.max_offset, where="indexer").resolved(self.defaults)
        request = replace(request, variant=self.variant(request.variant))
        nq = None
        if request.mode in DENSE_MODES:
            if vectors is None:
                raise InvalidArgument("queries", f"mode {request.mode} needs query vectors")
            arr = np.asarray(vectors, dtype=np.float32)
            arr = arr[None, :] if arr.ndim == 1 else arr  # (q, d)
            if len(arr) > cfg.max_queries:
                raise InvalidArgument("queries", f"has {len(arr)} rows, the limit is {cfg.max_queries}")
            vectors = v.unit_rows(arr, "queries", self.specs[request.variant].dim, None)
            nq = len(vectors)
        if request.mode in LEXICAL_MODES:
            texts = v.check_texts(texts, "texts", cfg.max_queries, nq)
            self._check_lexical_ready()
        return run_search(self, self.shared.store, request, vectors if request.mode in DENSE_MODES else None,
                          texts, cfg.exact_filter_max)

    # -- writes ----------------------------------------------------------------------------------------
    def upsert(self, docs: list[Document], vectors: dict[str, np.ndarray]) -> int:
        """Insert or replace `docs`; `vectors` has one (n, dim) array per variant, row i
        for docs[i]. Durable when it returns; visible to searches from then on."""
        cfg, store = self.shared.config, self.shared.store
        docs = v.check_documents(docs, cfg.max_id_length, cfg.max_batch)
        while True:
            specs, partial = self.specs, set(self.partial)
            unit = v.check_vectors(vectors, specs, len(docs), self.name, partial)
            if not docs:
                return 0
            terms = [lexical.analyse(self.lexical, d.text, d.metadata) for d in docs]  # outside the writer
            with self.shared.writer:
                self._check_live()
                if not set(unit) <= set(self.specs) or set(self.specs) - set(unit) - self.partial:
                    continue  # a variant was added or removed while we validated: again
                rows = store.write_batch(self.name, docs, unit, terms, commit=False)
                self._apply(lambda: self._apply_upsert(docs, rows, unit), commit=True)
            return len(docs)

    def delete(self, ids: list[str]) -> int:
        """Delete the documents with these ids; unknown ids are ignored. Returns how
        many were deleted."""
        cfg = self.shared.config
        ids = v.check_ids(ids, "ids", cfg.max_id_length, cfg.max_batch)
        if not ids:
            return 0
        with self.shared.writer:
            self._check_live()
            removed = self.shared.store.delete_ids(self.name, ids, commit=False)
            self._apply((lambda: self._apply_delete(removed)) if removed else None, commit=True)
        return len(removed)

    def put_vectors(self, variant: str, ids: list[str], vectors: np.ndarray,
                    expected_seqs: list[int] | None = None) -> int:
        """Store one variant's vectors for existing documents (backfill after
        add_variant, or re-encoding). Unknown ids are ignored, and with
        ``expected_seqs`` so are documents replaced since; returns how many were stored."""
        cfg = self.shared.config
        name = self.variant(variant)
        ids = v.check_ids(ids, "ids", cfg.max_id_length, cfg.max_batch)
        unit = v.unit_rows(vectors, "vectors", self.specs[name].dim, len(ids))  # (n, d)
        if not ids:
            return 0
        with self.shared.writer:
            self._check_live()
            self.variant(name)  # not removed meanwhile
            seqs = self.shared.store.put_vectors(self.name, name, ids, unit, expected_seqs)
            found = [i for i, s in enumerate(seqs) if s is not None]
            new = np.array([seqs[i] for i in found], dtype=np.int64)

            def apply() -> None:
                index = self.indexes[name]
                index.remove(np.intersect1d(index.ids(), new))
                index.add(new, unit[found])
                self.dirty.add(name)

            self._apply(apply)
        return len(found)

    def _apply_upsert(self, docs: list[Document], rows: list[tuple[int, int | None]],
                      vectors: dict[str, np.ndarray]) -> None:
        """docs with (new seq, replaced seq) from the committed transaction."""
        old = np.array([prev for _, prev in rows if prev is not None], dtype=np.int64)
        new = np.array([seq for seq, _ in rows], dtype=np.int64)
        for (seq, prev), doc in zip(rows, docs):
            if prev is not None:
                self.docs.drop(prev)
            self.docs.add(seq, doc.id, dict(doc.metadata))
        for name, index in self.indexes.items():
            index.remove(old)
            if name in vectors:  # a partial variant may lack this batch (see `partial`)
                index.add(new, vectors[name])
        self.dirty.update(self.indexes)

    def _apply_delete(self, removed: list[tuple[str, int]]) -> None:
        seqs = np.array([seq for _, seq in removed], dtype=np.int64)
        for seq in seqs.tolist():
            self.docs.drop(seq)
        for index in self.indexes.values():
            index.remove(seqs)
        self.dirty.update(self.indexes)

    def _apply(self, change: Callable[[], None] | None, commit: bool = False) -> None:
        """Apply a committed change in memory (writer held), then train or compact
        what needs it outside the write lock.

        ``commit=True``: the store's transaction is still open; it is committed under
        the same write lock as the in-memory change, so no search (which reads texts
        from SQLite under the read lock) ever sees SQLite a batch ahead of memory.
        Searches wait only for the COMMIT itself, not for the batch's inserts.

        Once committed, the write is durable and the call must succeed: nothing after
        the commit raises (the service answers INTERNAL only for writes that did not
        happen). An in-memory apply that fails is repaired by a rebuild from SQLite;
        if that fails too, the collection is taken out of service (FAILED_PRECONDITION
        until an admin rebuilds it). Failed maintenance leaves the current index serving."""
        store = self.shared.store
        failed: Exception | None = None
        with self.lock.write():
            if commit:
                try:
                    store.commit()
                except BaseException:
                    store.rollback()
                    raise
            if change is None:
                return
            try:
                change()
            except Exception as exc:
                log.exception("applying a committed batch to %s failed; rebuilding it from SQLite", self.name)
                failed = exc
        if failed is not None:
            try:
                self.rebuild()
            except Exception as exc:
                self.shared.quarantine(self.name, f"its index could not take a committed write ({failed}) "
                                                  f"nor be rebuilt from SQLite ({exc})")
            return
        try:
            self.maintain()
        except Exception:
            log.exception("%s: index maintenance after a write failed; the current index keeps serving", self.name)

    # -- variants ----------------------------------------------------------------------------------------
    def add_variant(self, spec: VariantSpec, partial: bool = False) -> None:
        """Add a variant. On a non-empty collection it starts empty: fill it with
        put_vectors (search covers the documents that have vectors so far).
        ``partial``: upserts may leave its vector out until :meth:`set_partial` clears
        it (a background build fills the gaps)."""
        check_spec(spec, "spec")
        with self.shared.writer:
            self._check_live()
            if spec.name in self.specs:
                raise AlreadyExists("spec.name", f"collection {self.name!r} already has a variant {spec.name!r}")
            self.shared.store.add_variant(self.name, spec)
            index = VariantIndex(spec)
            with self.lock.write():
                self.specs = {**self.specs, spec.name: spec}
                self.indexes[spec.name] = index
                self.snapshots[spec.name] = None
                self.dirty.add(spec.name)
                if partial:
                    self.partial.add(spec.name)

    def set_partial(self, variant: str, partial: bool) -> None:
        """Mark a variant as being built (upserts may omit it) or complete."""
        with self.shared.writer:
            self._check_live()
            self.variant(variant)
            with self.lock.write():
                (self.partial.add if partial else self.partial.discard)(variant)

    def remove_variant(self, name: str) -> None:
        """Drop a variant and its index and vectors; the default variant cannot go."""
        with self.shared.writer:
            self._check_live()
            self.variant(name, "name")
            if name == self.default_variant:
                raise FailedPrecondition("name", f"{name!r} is the default variant of {self.name!r}; "
                                         "promote another variant first")
            self.shared.store.remove_variant(self.name, name)
            with self.lock.write():
                self.specs = {k: s for k, s in self.specs.items() if k != name}
                self.indexes.pop(name, None)
                self.snapshots.pop(name, None)
                self.dirty.discard(name)
                self.partial.discard(name)
            snapshot_path(self.shared.data_dir, self.name, name).unlink(missing_ok=True)

    def set_default_variant(self, name: str) -> None:
        with self.shared.writer:
            self._check_live()
            self.variant(name, "name")
            self.shared.store.set_default_variant(self.name, name)
            with self.lock.write():
                self.default_variant = name

    # -- snapshots (writer held) -----------------------------------------------------------------------
    def snapshot(self, seq: int, only_dirty: bool = False) -> None:
        """Write a snapshot of every index (or of the changed ones) as of `seq`. Each
        index is serialized under the read lock (searches continue), the file is
        written outside it."""
        for name in list(self.indexes):
            if only_dirty and name not in self.dirty:
                continue
            with self.lock.read():
                index = self.indexes[name]
                parts, built = serialize(index), index.built_count
                spec = self.specs[name]
            path = snapshot_path(self.shared.data_dir, self.name, name)
            self.snapshots[name] = write_snapshot(path, spec, self.name, seq, parts, built)
            self.dirty.discard(name)

    # -- maintenance -----------------------------------------------------------------------------------
    def stored_vectors(self) -> int:
        """Vectors SQLite holds for this collection, all variants (for progress lines)."""
        return sum(self.shared.store.count_vectors(self.name, name) for name in self.specs)

    def rebuild(self, progress: Progress | None = None) -> None:
        """Rebuild every index and the document mirror from SQLite, built with no lock
        held, swapped in under the write lock (writer held: no write can slip between)."""
        store = self.shared.store
        docs = LiveDocuments(store.live_documents(self.name))
        indexes = {}
        for name, spec in self.specs.items():
            indexes[name] = build_from_store(store, self.name, spec)
            if progress is not None:
                progress.advance(indexes[name].count, f"{self.name}/{name}")
        with self.lock.write():
            self.docs = docs
            self.indexes = indexes
            self.dirty.update(indexes)

    def maintain(self) -> None:
        """Rebuild the main index of every variant that needs it: small ones now,
        large ones in a background thread (see "Maintenance" above). Writer held."""
        self.maintenance.check()

    # -- lexical index backfill --------------------------------------------------------------------------
    def lexical_ready(self) -> bool:
        stats = self.shared.store.lexical_stats(self.name)
        return stats is None or stats.ready

    def _check_lexical_ready(self) -> None:
        stats = self.shared.store.lexical_stats(self.name)
        if stats is not None and not stats.ready:
            raise Unavailable("mode", f"the lexical index of collection {self.name!r} is being built from "
                              f"the documents stored before the upgrade ({stats.docs} of "
                              f"{len(self.docs)} documents so far); lexical and hybrid searches answer "
                              "once it is complete (progress in Stats); dense searches work now")

    def backfill_chunk(self, limit: int) -> bool:
        """Index up to `limit` documents stored before the lexical index existed, in
        one transaction that also moves the collection's cursor (a restart resumes).
        True when the collection needs no more."""
        store = self.shared.store
        if self.retired or self.lexical_ready():
            return True
        pending = store.backfill_pending(self.name, limit)
        items = [(seq, lexical.analyse(self.lexical, text, meta)) for seq, text, meta in pending]
        with self.shared.writer:
            if self.retired:
                return True  # deleted meanwhile
            store.write_backfill(self.name, items, done=not pending, commit=False)
            self._apply(None, commit=True)
        if not pending:
            log.info("%s: lexical index complete", self.name)
        return not pending

    # -- reports -----------------------------------------------------------------------------------------
    def verify(self) -> tuple[dict[str, Any], list[str]]:
        """(report entry, problems): see indexer/verify.py. Writer held."""
        with self.lock.read():
            return verify_collection(self)

    def stats(self, now: float) -> dict[str, Any]:
        with self.lock.read():
            variants = {}
            for name, index in self.indexes.items():
                info = self.snapshots.get(name)
                sizes = index.size_bytes()
                variants[name] = {
                    "vectors": int(index.count),
                    "dim": index.dim,
                    "index_type": index.describe(),
                    "size_bytes": int(sum(sizes.values())),
                    "size_bytes_parts": sizes,
                    "tombstones": len(index.tombstones),
                    "snapshot_seq": info.seq if info else None,
                    "snapshot_age_s": round(now - info.created_at, 3) if info else None,
                    "changed_since_snapshot": name in self.dirty,
                    "rebuilding": self.maintenance.running.get(name),
                    "main_built_count": index.built_count,
                }
            lex = self.shared.store.lexical_stats(self.name)
            return {
                "documents": len(self.docs),
                "default_variant": self.default_variant,
                "variants": variants,
                "lexical": {
                    "analyzer": self.lexical.analyzer,
                    "documents": lex.docs if lex else 0,
                    "ready": lex is None or lex.ready,
                    "default_mode": self.defaults.mode,
                },
            }
