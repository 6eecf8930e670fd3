"""The Indexer: durable documents in SQLite plus derived FAISS indexes.

Threading model
---------------
- Many searches run at once. Each holds its collection's read lock while it
  searches FAISS and maps ids to documents (FAISS CPU indexes are safe to search
  concurrently; search knobs travel per call, never set on a shared index).
- One writer at a time: upsert, delete, put_vectors, collection/variant changes,
  snapshot and rebuild serialise on the writer mutex. A write validates its whole
  batch first (nothing is written if any part is bad), writes it in one SQLite
  transaction, then -- under the collection's write lock -- commits it (durable from
  here on: WAL + synchronous=FULL) and applies the whole batch to the in-memory
  state. So a search sees a batch entirely or not at all, in FAISS and in the texts
  it reads from SQLite alike; the write lock covers only the COMMIT (its fsync) and
  the in-memory apply -- never the batch's inserts, never encoding (which happens
  outside the indexer, before upsert is called), and never while an index is
  retrained or compacted (that is built from a stable copy under the writer mutex,
  then swapped in under the write lock).
- Snapshots serialise the indexes under the read lock (searches continue) and write
  the file outside it. A background thread takes them every snapshot_interval_s
  when something changed; close() takes a final one.
- Training an IVF index, retraining one whose data outgrew its nlist, compacting
  an HNSW graph full of tombstones and rebuilding one that grew hnsw_rebuild_growth
  times insert by insert rebuild the variant's main index from its exact vectors.
  Up to inline_maintenance_max vectors this runs on the writer's thread (writes
  wait, searches go on). Above it, a background thread copies the vectors
  under the writer mutex, builds and trains the new index holding no lock at all
  (writes and searches go on; the old index keeps answering), then takes the writer
  mutex again, adds the vectors written meanwhile and drops the ones deleted
  meanwhile (ids are sequence numbers, so a set difference finds both), and swaps
  it in under the write lock. A rebuild that finds its collection deleted or its
  variant replaced is discarded. close() waits for running rebuilds (FAISS cannot
  be interrupted, and exiting while a thread is inside it aborts the process), so
  the final snapshot holds their result.
- FAISS's OpenMP pool is sized once per process from config.faiss_threads.
- The lexical index lives in SQLite (indexer/lexical.py) and is written in the
  document's own transaction; a document is analysed before the writer mutex is
  taken. Collections from before format 3 are backfilled by a background thread,
  one chunk per transaction (the cursor commits with it, so a restart resumes);
  until it completes, lexical and hybrid searches of that collection answer
  UNAVAILABLE with the progress, and Stats shows it.

Recovery (open)
---------------
Per variant: load the snapshot; reconcile it with SQLite (remove ids whose documents
are gone or replaced, add the stored vectors it lacks -- this replays every change
newer than the snapshot, deletes included); verify the counts. A missing, truncated
or corrupt snapshot, or counts that disagree, is logged and the variant is rebuilt
from the vectors in SQLite, then snapshotted; open never fails because of a snapshot.
"""
from __future__ import annotations

import fcntl
import logging
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import faiss
import numpy as np

from ranksearch.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from ranksearch.indexer import lexical
from ranksearch.indexer import validation as v
from ranksearch.indexer.config import IndexerConfig
from ranksearch.indexer.faiss_index import VariantIndex, trial_build
from ranksearch.indexer.index_rules import check_index
from ranksearch.indexer.request import DENSE_MODES, LEXICAL_MODES, SearchDefaults, SearchRequest
from ranksearch.indexer.search import run_search
from ranksearch.indexer.snapshot import (
    SnapshotError,
    load_snapshot,
    remove_temp_files,
    serialize,
    snapshot_path,
    write_snapshot,
)
from ranksearch.indexer.state import CollectionState
from ranksearch.indexer.store import Store
from ranksearch.indexer.types import CollectionInfo, Document, Hit, VariantSpec

log = logging.getLogger("ranksearch.indexer")


class _Progress:
    """Log lines for a long job: done of total, elapsed and ETA (rate so far)."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.done, self.started = what, total, 0, time.perf_counter()

    def advance(self, n: int, item: str) -> None:
        self.done += n
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        log.info("%s: %s done; %d of %d vectors (%.0f%%), %.1f s elapsed, ETA %.0f s", self.what, item,
                 self.done, self.total, 100.0 * self.done / max(self.total, 1), elapsed, eta)


LOCK_NAME = "LOCK"
#: documents analysed and written per backfill transaction
BACKFILL_CHUNK = 256


class Indexer:
    def __init__(self, data_dir: Path | str, config: IndexerConfig | None = None):
        self.data_dir = Path(data_dir)
        self.config = config or IndexerConfig()
        self._store: Store | None = None
        self._collections: dict[str, CollectionState] = {}  # replaced, never mutated
        self._write_mutex = threading.RLock()
        self._lock_file = None
        self._stop = threading.Event()
        self._snapshotter: threading.Thread | None = None
        self._backfiller: threading.Thread | None = None
        self._maintainers = 0  # background rebuilds running
        self._maintenance_done = threading.Condition()
        #: what open() did, per "collection/variant": "snapshot", "rebuilt: <why>"
        self.recovery: dict[str, str] = {}
        #: collections that could not be opened or kept consistent -> why; their
        #: calls answer FAILED_PRECONDITION until rebuilt or deleted (see `_state`)
        self._unavailable: dict[str, str] = {}

    # -- lifecycle --------------------------------------------------------------------------
    def open(self) -> None:
        if self._store is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.data_dir / LOCK_NAME, "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            self._lock_file = None
            raise FailedPrecondition("data_dir", f"{self.data_dir} is in use by another process") from None
        faiss.omp_set_num_threads(self.config.faiss_threads)
        try:
            self._store = Store(self.data_dir)
            for tmp in remove_temp_files(self.data_dir):
                log.info("removed snapshot temp file %s left by an interrupted snapshot", tmp)
            collections = {}
            for name, default, specs, config in self._store.load_collections():
                try:
                    collections[name] = self._open_collection(name, default, specs, config)
                except Exception as exc:  # one bad collection must not stop the others
                    self._mark_unavailable(name, exc)
            self._collections = collections
            with self._write_mutex:
                for state in collections.values():
                    try:
                        self._maintain(state)
                    except Exception as exc:
                        self._mark_unavailable(state.name, exc)
            self.snapshot(only_dirty=True)
        except BaseException:
            self._release()
            raise
        if self.config.snapshot_interval_s > 0:
            self._stop.clear()
            self._snapshotter = threading.Thread(target=self._snapshot_loop, name="ranksearch-snapshot", daemon=True)
            self._snapshotter.start()
        if any(not self._lexical_ready(name) for name in self._collections):
            self._stop.clear()
            self._backfiller = threading.Thread(target=self._backfill_loop, name="ranksearch-lexical-backfill",
                                                daemon=True)
            self._backfiller.start()

    def close(self) -> None:
        if self._store is None:
            return
        self._stop.set()
        for thread in (self._snapshotter, self._backfiller):
            if thread is not None:
                thread.join()
        self._snapshotter = self._backfiller = None
        if self._maintainers:
            # FAISS cannot be interrupted, and a process that exits while a thread
            # is inside it aborts; so wait, and let the final snapshot include the result
            log.info("waiting for %d background rebuild(s) to finish before closing: %s", self._maintainers,
                     "; ".join(f"{s.name}/{n}: {why}" for s in self._collections.values()
                               for n, why in list(s.maintaining.items())))
            self.wait_for_maintenance()
        try:
            self.snapshot(only_dirty=True)
        finally:
            self._release()

    def _release(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> "Indexer":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _snapshot_loop(self) -> None:
        while not self._stop.wait(self.config.snapshot_interval_s):
            try:
                self.snapshot(only_dirty=True)
            except Exception:  # keep serving; the next tick or close() tries again
                log.exception("periodic snapshot failed")

    @property
    def store(self) -> Store:
        if self._store is None:
            raise FailedPrecondition("indexer", "is not open (call open() first)")
        return self._store

    # -- recovery ---------------------------------------------------------------------------
    def _open_collection(self, name: str, default: str, specs: list[VariantSpec],
                         config: str) -> CollectionState:
        """Check a stored collection's configuration against today's rules (a config
        stored by an older version may crash FAISS: it is never handed to it), then
        recover its indexes."""
        for i, spec in enumerate(specs):
            self._check_spec(spec, f"variants[{i}]", trial=False)
        return self._recover(name, default, specs, config)

    def _mark_unavailable(self, name: str, error: BaseException | str) -> None:
        """Take a collection out of service (writer mutex held, or during open): its
        calls answer FAILED_PRECONDITION naming it and `error` until an admin rebuilds
        or deletes it. Its documents stay in SQLite."""
        if isinstance(error, InvalidArgument):
            reason = f"its stored index configuration is not supported ({error})"
        elif isinstance(error, BaseException):
            reason = f"{type(error).__name__}: {error}"
        else:
            reason = error
        log.error("collection %r is unavailable: %s; its calls answer FAILED_PRECONDITION until an "
                  "admin rebuilds it (Rebuild) or deletes it (DeleteCollection)", name, reason,
                  exc_info=isinstance(error, BaseException) and not isinstance(error, InvalidArgument))
        self._unavailable = {**self._unavailable, name: reason[:1000]}
        self._collections = {k: s for k, s in self._collections.items() if k != name}

    @property
    def unavailable(self) -> dict[str, str]:
        """Collections out of service -> why."""
        return dict(self._unavailable)

    def _reopen(self, name: str) -> None:
        """Rebuild an unavailable collection from SQLite and put it back in service;
        raises FailedPrecondition (and keeps it unavailable) when that fails. Writer
        mutex held."""
        found = [c for c in self.store.load_collections() if c[0] == name]
        if not found:
            self._unavailable = {k: r for k, r in self._unavailable.items() if k != name}
            raise NotFound("collection", f"no collection named {name!r}")
        _, default, specs, config = found[0]
        try:
            for i, spec in enumerate(specs):
                self._check_spec(spec, f"variants[{i}]", trial=False)
            lex, defaults = lexical.decode_config(config)
            state = CollectionState(name, default, {s.name: s for s in specs}, lex, defaults)
            self._rebuild_state(state)
            self._maintain(state)
        except Exception as exc:
            self._mark_unavailable(name, exc)
            raise FailedPrecondition("collection", f"collection {name!r} is still unavailable: "
                                     f"{self._unavailable[name]}") from None
        log.info("collection %r rebuilt from SQLite and back in service", name)
        self._unavailable = {k: r for k, r in self._unavailable.items() if k != name}
        self._collections = {**self._collections, name: state}

    def _recover(self, name: str, default: str, specs: list[VariantSpec], config: str) -> CollectionState:
        lex, defaults = lexical.decode_config(config)
        state = CollectionState(name, default, {s.name: s for s in specs}, lex, defaults)
        for seq, doc_id, metadata in self.store.live_documents(name):
            state.add_doc(seq, doc_id, metadata)
        for spec in specs:
            key = f"{name}/{spec.name}"
            path = snapshot_path(self.data_dir, name, spec.name)
            try:
                index, info = load_snapshot(path, spec)
                added, removed = self._reconcile(name, index)
                self.recovery[key] = f"snapshot seq {info.seq}: replayed {added} added, {removed} removed"
                state.snapshots[spec.name] = info
                if added or removed:
                    state.dirty.add(spec.name)
            except SnapshotError as exc:
                if path.exists() or not self._empty(name, spec):
                    log.warning("rebuilding %s from SQLite: %s", key, exc)
                self.recovery[key] = f"rebuilt: {exc}"
                index = self._build_from_store(name, spec)
                state.snapshots[spec.name] = None
                state.dirty.add(spec.name)
            state.indexes[spec.name] = index
        return state

    def _empty(self, collection: str, spec: VariantSpec) -> bool:
        return self.store.count_vectors(collection, spec.name) == 0

    def _reconcile(self, collection: str, index: VariantIndex) -> tuple[int, int]:
        """Bring a loaded index in line with SQLite: returns (added, removed)."""
        stored = self._stored_seqs(collection, index.spec.name)
        have = index.ids()
        stale = np.setdiff1d(have, stored, assume_unique=True)
        missing = np.setdiff1d(stored, have, assume_unique=True)
        index.remove(stale)
        if len(missing):
            seqs, vecs = self.store.load_vectors(collection, index.spec.name, index.dim, missing.tolist())
            index.add(seqs, vecs)
        if index.count != len(stored):
            raise SnapshotError(f"{index.count} vectors after replay, SQLite has {len(stored)}")
        return len(missing), len(stale)

    def _stored_seqs(self, collection: str, variant: str) -> np.ndarray:
        rows = self.store._reader().execute(
            "SELECT seq FROM vectors WHERE variant = ? ORDER BY seq", (f"{collection}/{variant}",)
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def _build_from_store(self, collection: str, spec: VariantSpec) -> VariantIndex:
        seqs, vecs = self.store.load_vectors(collection, spec.name, spec.dim)
        index = VariantIndex(spec, main=None)
        index.add(seqs, vecs)
        return index.rebuilt()

    def _maintain(self, state: CollectionState) -> None:
        """Rebuild the main index of every variant that needs it (see
        VariantIndex.maintenance_reason): small ones now, large ones in a
        background thread. Writer mutex held."""
        cfg = self.config
        for name, index in list(state.indexes.items()):
            if name in state.maintaining:
                continue
            reason = index.maintenance_reason(cfg.tombstone_rebuild_ratio, cfg.hnsw_rebuild_growth,
                                              cfg.hnsw_rebuild_min)
            if reason is None:
                continue
            if index.count <= cfg.inline_maintenance_max:
                log.info("%s/%s: %s", state.name, name, reason)
                fresh = index.rebuilt()
                with state.lock.write():
                    state.indexes[name] = fresh
                    state.dirty.add(name)
                continue
            state.maintaining[name] = reason
            with self._maintenance_done:
                self._maintainers += 1
            threading.Thread(target=self._maintain_in_background, args=(state, name, index),
                             name=f"ranksearch-maintain-{state.name}/{name}", daemon=True).start()

    def _still_current(self, state: CollectionState, name: str, index: VariantIndex) -> bool:
        """Whether a background rebuild started from `index` may still be swapped in."""
        return (self._store is not None and self._collections.get(state.name) is state
                and name in state.indexes and state.indexes[name].spec is index.spec)

    def _maintain_in_background(self, state: CollectionState, name: str, started_from: VariantIndex) -> None:
        key, reason = f"{state.name}/{name}", state.maintaining.get(name, "")
        try:
            with self._write_mutex:  # a stable copy: no write is half-applied
                if not self._still_current(state, name, started_from):
                    return
                index = state.indexes[name]
                ids, vecs = index.ids(), index.vectors()
            log.info("%s: %s, in the background (writes and searches go on)", key, reason)
            t0 = time.monotonic()
            main = index.build_main(ids, vecs)  # no lock held: the slow part
            del vecs
            with self._write_mutex:
                if not self._still_current(state, name, index):
                    log.info("%s: background rebuild discarded (collection deleted or variant changed)", key)
                    return
                current = state.indexes[name]
                fresh = current.with_main(main, ids)  # catch up with the writes made meanwhile
                with state.lock.write():
                    state.indexes[name] = fresh
                    state.dirty.add(name)
            log.info("%s: background rebuild done in %.1f s (%d vectors)", key, time.monotonic() - t0, fresh.count)
        except Exception:  # the old index keeps serving; the next write tries again
            log.exception("%s: background rebuild failed", key)
        finally:
            with self._write_mutex:
                state.maintaining.pop(name, None)
            with self._maintenance_done:
                self._maintainers -= 1
                self._maintenance_done.notify_all()

    def wait_for_maintenance(self, timeout: float | None = None) -> bool:
        """Block until no background rebuild is running; False on timeout."""
        with self._maintenance_done:
            return self._maintenance_done.wait_for(lambda: self._maintainers == 0, timeout)

    # -- collections ----------------------------------------------------------------------------
    def _state(self, collection: Any, field: str = "collection") -> CollectionState:
        self.store  # raises if not open
        state = self._collections.get(collection) if isinstance(collection, str) else None
        if state is None:
            reason = self._unavailable.get(collection) if isinstance(collection, str) else None
            if reason is not None:
                raise FailedPrecondition(field, f"collection {collection!r} is unavailable: {reason}; an admin "
                                         "can Rebuild it (from SQLite) or DeleteCollection it")
            raise NotFound(field, f"no collection named {collection!r}")
        return state

    def _variant(self, state: CollectionState, variant: str | None, field: str = "variant") -> str:
        name = state.default_variant if variant is None or variant == "" else variant
        if name not in state.specs:
            raise NotFound(field, f"collection {state.name!r} has no variant {name!r} (it has: {', '.join(state.specs)})")
        return name

    @staticmethod
    def _check_spec(spec: Any, field: str, trial: bool = True) -> VariantSpec:
        """Names, dim and the index configuration (index_rules); with `trial`, also
        build and exercise a small candidate index of that configuration."""
        if not isinstance(spec, VariantSpec):
            raise InvalidArgument(field, f"must be a VariantSpec, got {type(spec).__name__}")
        v.check_name(spec.name, f"{field}.name")
        if not isinstance(spec.dim, int) or isinstance(spec.dim, bool) or not 1 <= spec.dim <= 65536:
            raise InvalidArgument(f"{field}.dim", f"must be an integer in 1..65536, got {spec.dim!r}")
        if not isinstance(spec.encoder, str):
            raise InvalidArgument(f"{field}.encoder", "must be a string")
        check_index(spec.index.kind, spec.index.params, f"{field}.index")
        if trial:
            trial_build(spec, field)
        return spec

    def create_collection(self, name: str, variants: list[VariantSpec], default_variant: str | None = None,
                          lexical_config: lexical.LexicalConfig | None = None,
                          defaults: SearchDefaults | None = None) -> CollectionInfo:
        """`lexical_config`: the lexical index's analyzer and BM25 settings (fixed
        from now on); `defaults`: mode and hybrid parameters of requests that set none."""
        v.check_name(name, "name")
        lex = lexical_config or lexical.LexicalConfig()
        defaults = defaults or SearchDefaults()
        if not isinstance(lex, lexical.LexicalConfig):
            raise InvalidArgument("lexical", f"must be a LexicalConfig, got {type(lex).__name__}")
        if not isinstance(defaults, SearchDefaults):
            raise InvalidArgument("defaults", f"must be SearchDefaults, got {type(defaults).__name__}")
        if not isinstance(variants, (list, tuple)) or not variants:
            raise InvalidArgument("variants", "needs at least one VariantSpec")
        seen: set[str] = set()
        for i, spec in enumerate(variants):
            self._check_spec(spec, f"variants[{i}]")
            if spec.name in seen:
                raise InvalidArgument(f"variants[{i}].name", f"duplicate variant name {spec.name!r}")
            seen.add(spec.name)
        default = default_variant or variants[0].name
        if default not in seen:
            raise InvalidArgument("default_variant", f"{default!r} is not one of the variants ({', '.join(seen)})")
        with self._write_mutex:
            if name in self._collections or name in self._unavailable:
                raise AlreadyExists("name", f"collection {name!r} already exists")
            self.store.create_collection(name, list(variants), default, lexical.encode_config(lex, defaults))
            state = CollectionState(name, default, {s.name: s for s in variants}, lex, defaults)
            for spec in variants:
                state.indexes[spec.name] = VariantIndex(spec)
                state.snapshots[spec.name] = None
                state.dirty.add(spec.name)
            shutil.rmtree(self.data_dir / "snapshots" / name, ignore_errors=True)
            self._collections = {**self._collections, name: state}
        return self.get_collection(name)

    def _info(self, state: CollectionState) -> CollectionInfo:
        with state.lock.read():
            return CollectionInfo(state.name, list(state.specs.values()), state.default_variant, len(state.by_id),
                                  state.lexical, state.defaults)

    def list_collections(self) -> list[CollectionInfo]:
        """Every collection, sorted by name; unavailable ones carry their reason."""
        self.store
        infos = [self._info(s) for s in self._collections.values()]
        down = self._unavailable
        if down:
            infos += [CollectionInfo(name, specs, default, self.store.count_documents(name),
                                     *lexical.decode_config(config), unavailable=down[name])
                      for name, default, specs, config in self.store.load_collections() if name in down]
        return sorted(infos, key=lambda i: i.name)

    def get_collection(self, name: str) -> CollectionInfo:
        return self._info(self._state(name, "name"))

    def delete_collection(self, name: str) -> None:
        """Delete a collection and its documents (an unavailable one too)."""
        with self._write_mutex:
            if isinstance(name, str) and name in self._unavailable:
                self.store.delete_collection(name)
                self._unavailable = {k: r for k, r in self._unavailable.items() if k != name}
            else:
                state = self._state(name, "name")
                self.store.delete_collection(name)
                with state.lock.write():
                    self._collections = {k: s for k, s in self._collections.items() if k != name}
            shutil.rmtree(self.data_dir / "snapshots" / name, ignore_errors=True)

    def add_variant(self, collection: str, spec: VariantSpec, partial: bool = False) -> None:
        """Add a variant. On a non-empty collection it starts empty: fill it with
        put_vectors (search covers the documents that have vectors so far).
        ``partial``: upserts may leave its vector out until :meth:`set_partial` clears
        it (a background build fills the gaps)."""
        self._check_spec(spec, "spec")
        with self._write_mutex:
            state = self._state(collection)
            if spec.name in state.specs:
                raise AlreadyExists("spec.name", f"collection {collection!r} already has a variant {spec.name!r}")
            self.store.add_variant(collection, spec)
            index = VariantIndex(spec)
            with state.lock.write():
                state.specs = {**state.specs, spec.name: spec}
                state.indexes[spec.name] = index
                state.snapshots[spec.name] = None
                state.dirty.add(spec.name)
                if partial:
                    state.partial.add(spec.name)

    def set_partial(self, collection: str, variant: str, partial: bool) -> None:
        """Mark a variant as being built (upserts may omit it) or complete."""
        with self._write_mutex:
            state = self._state(collection)
            self._variant(state, variant)
            with state.lock.write():
                (state.partial.add if partial else state.partial.discard)(variant)

    def remove_variant(self, collection: str, name: str) -> None:
        """Drop a variant and its index and vectors; the default variant cannot go."""
        with self._write_mutex:
            state = self._state(collection)
            self._variant(state, name, "name")
            if name == state.default_variant:
                raise FailedPrecondition("name", f"{name!r} is the default variant of {collection!r}; "
                                         "promote another variant first")
            self.store.remove_variant(collection, name)
            with state.lock.write():
                state.specs = {k: s for k, s in state.specs.items() if k != name}
                state.indexes.pop(name, None)
                state.snapshots.pop(name, None)
                state.dirty.discard(name)
                state.partial.discard(name)
            snapshot_path(self.data_dir, collection, name).unlink(missing_ok=True)

    def documents_without_vector(self, collection: str, variant: str, after_seq: int,
                                 limit: int) -> list[tuple[int, str, str]]:
        """(seq, id, text) of documents that still lack ``variant``'s vector (backfill)."""
        state = self._state(collection)
        self._variant(state, variant)
        return self.store.documents_without_vector(collection, variant, after_seq, limit)

    def set_default_variant(self, collection: str, name: str) -> None:
        with self._write_mutex:
            state = self._state(collection)
            self._variant(state, name, "name")
            self.store.set_default_variant(collection, name)
            with state.lock.write():
                state.default_variant = name

    # -- writes -----------------------------------------------------------------------------------
    def upsert(self, collection: str, docs: list[Document], vectors: dict[str, np.ndarray]) -> int:
        """Insert or replace `docs`; `vectors` has one (n, dim) array per variant, row i
        for docs[i]. Durable when it returns; visible to searches from then on."""
        cfg = self.config
        state = self._state(collection)
        docs = v.check_documents(docs, cfg.max_id_length, cfg.max_batch)
        unit = v.check_vectors(vectors, state.specs, len(docs), collection, state.partial)
        if not docs:
            return 0
        terms = [lexical.analyse(state.lexical, d.text, d.metadata) for d in docs]  # outside the mutex
        with self._write_mutex:
            if (self._collections.get(collection) is not state or not set(unit) <= set(state.specs)
                    or set(state.specs) - set(unit) - state.partial):
                return self.upsert(collection, docs, vectors)  # changed while we validated
            rows = self.store.write_batch(collection, docs, unit, terms, commit=False)
            self._apply(state, lambda: state.apply_upsert(docs, rows, unit), commit=True)
        return len(docs)

    def unchanged(self, collection: str, docs: list[Document]) -> set[str]:
        """Ids of `docs` already stored with the same text and metadata and a vector for
        every variant (see Store.unchanged): the caller may skip encoding them. Read
        without the writer mutex: a concurrent write to the same id orders after it."""
        state = self._state(collection)
        return self.store.unchanged(collection, docs, list(state.specs))

    def delete(self, collection: str, ids: list[str]) -> int:
        """Delete the documents with these ids; unknown ids are ignored. Returns how
        many were deleted."""
        cfg = self.config
        state = self._state(collection)
        ids = v.check_ids(ids, "ids", cfg.max_id_length, cfg.max_batch)
        if not ids:
            return 0
        with self._write_mutex:
            state = self._state(collection)
            removed = self.store.delete_ids(collection, ids, commit=False)
            self._apply(state, (lambda: state.apply_delete(removed)) if removed else None, commit=True)
        return len(removed)

    def put_vectors(self, collection: str, variant: str, ids: list[str], vectors: np.ndarray,
                    expected_seqs: list[int] | None = None) -> int:
        """Store one variant's vectors for existing documents (backfill after
        add_variant, or re-encoding). Unknown ids are ignored, and with
        ``expected_seqs`` so are documents replaced since; returns how many were stored."""
        cfg = self.config
        state = self._state(collection)
        name = self._variant(state, variant)
        ids = v.check_ids(ids, "ids", cfg.max_id_length, cfg.max_batch)
        unit = v.unit_rows(vectors, "vectors", state.specs[name].dim, len(ids))
        if not ids:
            return 0
        with self._write_mutex:
            state = self._state(collection)
            seqs = self.store.put_vectors(collection, name, ids, unit, expected_seqs)
            found = [i for i, s in enumerate(seqs) if s is not None]
            new = np.array([seqs[i] for i in found], dtype=np.int64)

            def apply() -> None:
                index = state.indexes[name]
                index.remove(np.intersect1d(index.ids(), new))
                index.add(new, unit[found])
                state.dirty.add(name)

            self._apply(state, apply)
        return len(found)

    def _apply(self, state: CollectionState, change, commit: bool = False) -> None:
        """Apply a committed change in memory (writer mutex held), then train or
        compact what needs it outside the write lock.

        ``commit=True``: the store's transaction is still open; it is committed under
        the same write lock as the in-memory change, so no search (which reads texts
        from SQLite under the read lock) ever sees SQLite a batch ahead of memory.
        Searches wait only for the COMMIT itself, not for the batch's inserts.

        Once committed, the write is durable and the call must succeed: nothing after
        the commit raises (the service answers INTERNAL only for writes that did not
        happen). An in-memory apply that fails is repaired by a rebuild from SQLite;
        if that fails too, the collection is marked unavailable (FAILED_PRECONDITION
        until an admin rebuilds it). Failed maintenance leaves the current index serving."""
        failed: Exception | None = None
        with state.lock.write():
            if commit:
                try:
                    self.store.commit()
                except BaseException:
                    self.store.rollback()
                    raise
            if change is None:
                return
            try:
                change()
            except Exception as exc:
                log.exception("applying a committed batch to %s failed; rebuilding it from SQLite", state.name)
                failed = exc
        if failed is not None:
            try:
                self._rebuild_state(state)
            except Exception as exc:
                self._mark_unavailable(state.name, f"its index could not take a committed write ({failed}) "
                                                   f"nor be rebuilt from SQLite ({exc})")
            return
        try:
            self._maintain(state)
        except Exception:
            log.exception("%s: index maintenance after a write failed; the current index keeps serving",
                          state.name)

    # -- reads ------------------------------------------------------------------------------------------
    def get(self, collection: str, ids: list[str]) -> list[Document]:
        """The documents that exist among `ids`, in the order asked."""
        cfg = self.config
        self._state(collection)
        ids = v.check_ids(ids, "ids", cfg.max_id_length, cfg.max_batch)
        found = self.store.get(collection, ids)
        return [found[i] for i in ids if i in found]

    def search(self, collection: str, request: SearchRequest, vectors: np.ndarray | None = None,
               texts: Sequence[str] | None = None) -> list[list[Hit]]:
        """Top-k per query. `request` (indexer/request.py) says how; mode None takes the
        collection's default mode. `vectors` (q, dim), one row per query (a single
        (dim,) vector is one query; normalised here), for the dense modes (nearest,
        farthest, hybrid); `texts`, one per query, for the lexical ones (lexical,
        hybrid). Scores: cosine (nearest: largest first; farthest: smallest first),
        BM25 (lexical), fused (hybrid). Lexical and hybrid searches of a collection
        whose lexical index is still being backfilled raise Unavailable."""
        cfg = self.config
        state = self._state(collection)
        if not isinstance(request, SearchRequest):
            raise InvalidArgument("request", f"must be a SearchRequest, got {type(request).__name__}")
        request = request.check_limits(cfg.max_k, cfg.max_offset, where="indexer").resolved(state.defaults)
        request = replace(request, variant=self._variant(state, request.variant))
        nq = None
        if request.mode in DENSE_MODES:
            if vectors is None:
                raise InvalidArgument("queries", f"mode {request.mode} needs query vectors")
            arr = np.asarray(vectors, dtype=np.float32)
            arr = arr[None, :] if arr.ndim == 1 else arr
            if len(arr) > cfg.max_queries:
                raise InvalidArgument("queries", f"has {len(arr)} rows, the limit is {cfg.max_queries}")
            vectors = v.unit_rows(arr, "queries", state.specs[request.variant].dim, None)
            nq = len(vectors)
        if request.mode in LEXICAL_MODES:
            texts = v.check_texts(texts, "texts", cfg.max_queries, nq)
            self._check_lexical_ready(state)
        return run_search(state, self.store, request, vectors if request.mode in DENSE_MODES else None,
                          texts, cfg.exact_filter_max)

    # -- lexical index backfill ------------------------------------------------------------------
    def _lexical_ready(self, collection: str) -> bool:
        stats = self.store.lexical_stats(collection)
        return stats is None or stats.ready

    def _check_lexical_ready(self, state: CollectionState) -> None:
        stats = self.store.lexical_stats(state.name)
        if stats is not None and not stats.ready:
            raise Unavailable("mode", f"the lexical index of collection {state.name!r} is being built from "
                              f"the documents stored before the upgrade ({stats.docs} of "
                              f"{len(state.by_id)} documents so far); lexical and hybrid searches answer "
                              "once it is complete (progress in Stats); dense searches work now")

    def _backfill_loop(self) -> None:
        """Index, chunk by chunk, the documents of collections created before the
        lexical index existed. Each chunk is one transaction that also moves the
        collection's cursor, so a restart resumes where it stopped."""
        for name in sorted(self._collections):
            while not self._stop.is_set():
                try:
                    if self._backfill_chunk(name):
                        break
                except Exception:  # keep serving dense searches; the next start tries again
                    log.exception("lexical backfill of %s failed", name)
                    return

    def _backfill_chunk(self, name: str) -> bool:
        """Index one chunk of `name`; True when the collection needs no more."""
        state = self._collections.get(name)
        if state is None or self._lexical_ready(name):
            return True
        pending = self.store.backfill_pending(name, BACKFILL_CHUNK)
        items = [(seq, lexical.analyse(state.lexical, text, meta)) for seq, text, meta in pending]
        with self._write_mutex:
            if self._collections.get(name) is not state:
                return True  # deleted meanwhile
            self.store.write_backfill(name, items, done=not pending, commit=False)
            self._apply(state, None, commit=True)
        if not pending:
            log.info("%s: lexical index complete", name)
        return not pending

    def wait_for_backfill(self, timeout: float | None = None) -> bool:
        """Block until every collection's lexical index is complete; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not all(self._lexical_ready(n) for n in list(self._collections)):
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # -- operations ------------------------------------------------------------------------------------
    def snapshot(self, only_dirty: bool = False) -> None:
        """Write a snapshot of every index (or of the changed ones) and prune the
        change log up to the oldest snapshot."""
        with self._write_mutex:
            seq = self.store.max_seq()
            for state in list(self._collections.values()):
                for name in list(state.indexes):
                    if only_dirty and name not in state.dirty:
                        continue
                    with state.lock.read():
                        index = state.indexes[name]
                        parts, built = serialize(index), index.built_count
                        spec = state.specs[name]
                    path = snapshot_path(self.data_dir, state.name, name)
                    state.snapshots[name] = write_snapshot(path, spec, state.name, seq, parts, built)
                    state.dirty.discard(name)
            infos = [i for s in self._collections.values() for i in s.snapshots.values()]
            if infos and all(i is not None for i in infos):
                self.store.prune_changes(min(i.seq for i in infos))

    def rebuild(self, collection: str | None = None) -> None:
        """Rebuild FAISS indexes from the vectors in SQLite and snapshot them. Logs one
        progress line per variant (vectors done of all, elapsed, ETA). An unavailable
        collection is rebuilt from SQLite and put back in service (FailedPrecondition
        if it still cannot be; rebuild(None) tries every one and leaves those that
        fail to verify())."""
        with self._write_mutex:
            if collection is not None and collection in self._unavailable:
                self._reopen(collection)
                self.snapshot(only_dirty=True)
                return
            states = [self._state(collection)] if collection is not None else list(self._collections.values())
            total = sum(self.store.count_vectors(s.name, v) for s in states for v in s.specs)
            progress = _Progress("rebuild", total)
            for state in states:
                self._rebuild_state(state, progress)
            if collection is None:
                for name in list(self._unavailable):
                    try:
                        self._reopen(name)
                    except (FailedPrecondition, NotFound):
                        pass  # logged; verify() reports it
            self.snapshot(only_dirty=True)

    def _rebuild_state(self, state: CollectionState, progress: "_Progress | None" = None) -> None:
        fresh = CollectionState(state.name, state.default_variant, dict(state.specs))
        for seq, doc_id, metadata in self.store.live_documents(state.name):
            fresh.add_doc(seq, doc_id, metadata)
        indexes = {}
        for name, spec in state.specs.items():
            indexes[name] = self._build_from_store(state.name, spec)
            if progress is not None:
                progress.advance(indexes[name].count, f"{state.name}/{name}")
        with state.lock.write():
            state.by_seq, state.by_id, state.postings = fresh.by_seq, fresh.by_id, fresh.postings
            state.indexes = indexes
            state.dirty.update(indexes)

    def verify(self) -> dict:
        """Check SQLite integrity, that every FAISS index holds exactly the vectors
        stored in SQLite, and that every snapshot file reads back. Returns
        {"ok": bool, "problems": [...], "collections": {...}}."""
        problems = [f"sqlite: {p}" for p in self.store.integrity_check()]
        problems += [f"{name}: unavailable: {why}" for name, why in sorted(self._unavailable.items())]
        report: dict[str, Any] = {}
        with self._write_mutex:
            for state in self._collections.values():
                docs = self.store.count_documents(state.name)
                entry: dict[str, Any] = {"documents": docs, "variants": {}}
                with state.lock.read():
                    if len(state.by_id) != docs:
                        problems.append(f"{state.name}: {len(state.by_id)} documents in memory, {docs} in SQLite")
                    for name, index in state.indexes.items():
                        stored = self._stored_seqs(state.name, name)
                        have = np.sort(index.ids())
                        ok = len(have) == len(stored) and bool((have == stored).all())
                        if not ok:
                            problems.append(f"{state.name}/{name}: index holds {len(have)} ids, SQLite {len(stored)} vectors, sets differ")
                        if index.main is not None and index.main.ntotal - len(index.tombstones) != index.count:
                            problems.append(f"{state.name}/{name}: main index holds {index.main.ntotal - len(index.tombstones)} live vectors, exact {index.count}")
                        missing = docs - len(stored)
                        if missing:
                            problems.append(f"{state.name}/{name}: {missing} documents have no vector for this variant (backfill with put_vectors)")
                        entry["variants"][name] = {"vectors": int(index.count), "index_matches_sqlite": ok}
                        path = snapshot_path(self.data_dir, state.name, name)
                        if path.exists():
                            try:
                                load_snapshot(path, state.specs[name])
                            except SnapshotError as exc:
                                problems.append(f"{state.name}/{name}: snapshot unreadable: {exc}")
                    lex = self.store.lexical_stats(state.name)
                    if lex is not None and lex.ready and lex.docs != docs:
                        problems.append(f"{state.name}: lexical index holds {lex.docs} documents, SQLite {docs}")
                    entry["lexical_documents"] = lex.docs if lex else 0
                report[state.name] = entry
        return {"ok": not problems, "problems": problems, "collections": report}

    def stats(self) -> dict:
        now = time.time()
        out: dict[str, Any] = {"data_dir": str(self.data_dir), "last_seq": self.store.max_seq(), "collections": {},
                               "unavailable": dict(self._unavailable)}
        for state in list(self._collections.values()):
            with state.lock.read():
                variants = {}
                for name, index in state.indexes.items():
                    info = state.snapshots.get(name)
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
                        "changed_since_snapshot": name in state.dirty,
                        "rebuilding": state.maintaining.get(name),
                        "main_built_count": index.built_count,
                    }
                lex = self.store.lexical_stats(state.name)
                out["collections"][state.name] = {
                    "documents": len(state.by_id),
                    "default_variant": state.default_variant,
                    "variants": variants,
                    "lexical": {
                        "analyzer": state.lexical.analyzer,
                        "documents": lex.docs if lex else 0,
                        "ready": lex is None or lex.ready,
                        "default_mode": state.defaults.mode,
                    },
                }
        return out
