"""The Indexer: the embedded store -- durable documents in SQLite plus derived FAISS
and lexical indexes, one data directory, one process. It implements the storage
port (indexer/port.py) as a registry of ``Collection`` objects
(indexer/collection.py), each owning its state, lock, indexes, snapshots,
maintenance and search; the Indexer routes every call to one of them.

What it owns itself is what crosses collections:
- the data dir: its LOCK file (one process at a time), the SQLite store
  (indexer/store.py; its data-format migrations run when it opens) and the one
  writer mutex all collections share (one SQLite writer connection);
- the registry: create, delete and list collections, and quarantine -- a collection
  that cannot be opened or kept consistent is taken out of service (its calls
  answer FAILED_PRECONDITION naming it) until an admin rebuilds or deletes it;
- snapshots of every collection (a background thread every snapshot_interval_s
  when something changed, and on close) and pruning the change log up to the oldest;
- the lexical backfill thread for collections from before format 3: one chunk per
  transaction (the cursor commits with it, so a restart resumes); until it
  completes, lexical and hybrid searches of that collection answer UNAVAILABLE with
  the progress, and Stats shows it;
- waiting for background rebuilds on close (FAISS cannot be interrupted, and a
  process that exits while a thread is inside it aborts), so the final snapshot
  holds their result;
- FAISS's OpenMP pool, sized once per process from config.faiss_threads.
Backups are taken outside the serving process (indexer/backup.py).

Threading and recovery: see indexer/collection.py ("Locks", "Maintenance") and
indexer/recovery.py. Open never fails because of a snapshot, nor because of one
bad collection.
"""
from __future__ import annotations

import fcntl
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import faiss
import numpy as np

from ranksearch.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from ranksearch.indexer import lexical
from ranksearch.indexer import validation as v
from ranksearch.indexer.collection import Collection, Retired, Shared
from ranksearch.indexer.config import IndexerConfig
from ranksearch.indexer.faiss_index import check_spec
from ranksearch.indexer.maintenance import BackgroundJobs, Progress
from ranksearch.indexer.request import SearchDefaults, SearchRequest
from ranksearch.indexer.snapshot import collection_dir, remove_temp_files
from ranksearch.indexer.store import Store
from ranksearch.indexer.types import CollectionInfo, Document, Hit, VariantSpec

log = logging.getLogger("ranksearch.indexer")

LOCK_NAME = "LOCK"
#: documents analysed and written per backfill transaction
BACKFILL_CHUNK = 256

T = TypeVar("T")


class Indexer:
    def __init__(self, data_dir: Path | str, config: IndexerConfig | None = None):
        self.data_dir = Path(data_dir)
        self.config = config or IndexerConfig()
        self._shared: Shared | None = None
        self._collections: dict[str, Collection] = {}  # replaced, never mutated
        self._write_mutex = threading.RLock()
        self._jobs = BackgroundJobs()
        self._lock_file = None
        self._stop = threading.Event()
        self._snapshotter: threading.Thread | None = None
        self._backfiller: threading.Thread | None = None
        #: what open() did, per "collection/variant": "snapshot ...", "rebuilt: <why>"
        self.recovery: dict[str, str] = {}
        #: collections that could not be opened or kept consistent -> why; their
        #: calls answer FAILED_PRECONDITION until rebuilt or deleted (see `_collection`)
        self._unavailable: dict[str, str] = {}

    # -- lifecycle --------------------------------------------------------------------------
    def open(self) -> None:
        if self._shared is not None:
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
            store = Store(self.data_dir)
            self._shared = Shared(self.data_dir, self.config, store, self._write_mutex, self._jobs,
                                  self._mark_unavailable)
            for tmp in remove_temp_files(self.data_dir):
                log.info("removed snapshot temp file %s left by an interrupted snapshot", tmp)
            collections = {}
            for name, default, specs, config in store.load_collections():
                try:
                    collections[name] = Collection.recover(self._shared, name, default, specs, config,
                                                           self.recovery)
                except Exception as exc:  # one bad collection must not stop the others
                    self._mark_unavailable(name, exc)
            self._collections = collections
            with self._write_mutex:
                for c in collections.values():
                    try:
                        c.maintain()
                    except Exception as exc:
                        self._mark_unavailable(c.name, exc)
            self.snapshot(only_dirty=True)
        except BaseException:
            self._release()
            raise
        if self.config.snapshot_interval_s > 0:
            self._stop.clear()
            self._snapshotter = threading.Thread(target=self._snapshot_loop, name="ranksearch-snapshot", daemon=True)
            self._snapshotter.start()
        if any(not c.lexical_ready() for c in self._collections.values()):
            self._stop.clear()
            self._backfiller = threading.Thread(target=self._backfill_loop, name="ranksearch-lexical-backfill",
                                                daemon=True)
            self._backfiller.start()

    def close(self) -> None:
        if self._shared is None:
            return
        self._stop.set()
        for thread in (self._snapshotter, self._backfiller):
            if thread is not None:
                thread.join()
        self._snapshotter = self._backfiller = None
        if self._jobs.running:
            log.info("waiting for %d background rebuild(s) to finish before closing: %s", self._jobs.running,
                     "; ".join(f"{c.name}/{n}: {why}" for c in self._collections.values()
                               for n, why in list(c.maintenance.running.items())))
            self.wait_for_maintenance()
        try:
            self.snapshot(only_dirty=True)
        finally:
            self._release()

    def _release(self) -> None:
        if self._shared is not None:
            with self._write_mutex:
                for c in self._collections.values():
                    c.retire()
                self._shared.store.close()
            self._shared = None
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
        if self._shared is None:
            raise FailedPrecondition("indexer", "is not open (call open() first)")
        return self._shared.store

    # -- the registry ---------------------------------------------------------------------------
    def _collection(self, name: Any, field: str = "collection") -> Collection:
        self.store  # raises if not open
        c = self._collections.get(name) if isinstance(name, str) else None
        if c is None:
            reason = self._unavailable.get(name) if isinstance(name, str) else None
            if reason is not None:
                raise FailedPrecondition(field, f"collection {name!r} is unavailable: {reason}; an admin "
                                         "can Rebuild it (from SQLite) or DeleteCollection it")
            raise NotFound(field, f"no collection named {name!r}")
        return c

    def _route(self, name: Any, call: Callable[[Collection], T], field: str = "collection") -> T:
        """`call` on the collection named `name`; again on whatever the name means now
        if the collection was retired while the call waited for the writer."""
        while True:
            try:
                return call(self._collection(name, field))
            except Retired:
                continue

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
        gone = self._collections.get(name)
        self._collections = {k: c for k, c in self._collections.items() if k != name}
        if gone is not None:
            gone.retire()

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
            c = Collection.from_sqlite(self._shared, name, default, specs, config)
        except Exception as exc:
            self._mark_unavailable(name, exc)
            raise FailedPrecondition("collection", f"collection {name!r} is still unavailable: "
                                     f"{self._unavailable[name]}") from None
        log.info("collection %r rebuilt from SQLite and back in service", name)
        self._unavailable = {k: r for k, r in self._unavailable.items() if k != name}
        self._collections = {**self._collections, name: c}

    def create_collection(self, name: str, variants: list[VariantSpec], default_variant: str | None = None,
                          lexical_config: lexical.LexicalConfig | None = None,
                          defaults: SearchDefaults | None = None) -> CollectionInfo:
        """`lexical_config`: the lexical index's analyzer and BM25 settings (fixed
        from now on); `defaults`: mode and hybrid parameters of requests that set none."""
        lex, defaults = v.check_collection_settings(name, lexical_config, defaults)
        if not isinstance(variants, (list, tuple)) or not variants:
            raise InvalidArgument("variants", "needs at least one VariantSpec")
        seen: set[str] = set()
        for i, spec in enumerate(variants):
            check_spec(spec, f"variants[{i}]")
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
            shutil.rmtree(collection_dir(self.data_dir, name), ignore_errors=True)  # left by a deleted namesake
            c = Collection.create(self._shared, name, list(variants), default, lex, defaults)
            self._collections = {**self._collections, name: c}
        return self.get_collection(name)

    def list_collections(self) -> list[CollectionInfo]:
        """Every collection, sorted by name; unavailable ones carry their reason."""
        self.store
        infos = [c.info() for c in self._collections.values()]
        down = self._unavailable
        if down:
            infos += [CollectionInfo(name, specs, default, self.store.count_documents(name),
                                     *lexical.decode_config(config), unavailable=down[name])
                      for name, default, specs, config in self.store.load_collections() if name in down]
        return sorted(infos, key=lambda i: i.name)

    def get_collection(self, name: str) -> CollectionInfo:
        return self._collection(name, "name").info()

    def delete_collection(self, name: str) -> None:
        """Delete a collection and its documents (an unavailable one too)."""
        with self._write_mutex:
            if isinstance(name, str) and name in self._unavailable:
                self.store.delete_collection(name)
                self._unavailable = {k: r for k, r in self._unavailable.items() if k != name}
            else:
                c = self._collection(name, "name")
                self.store.delete_collection(name)
                self._collections = {k: s for k, s in self._collections.items() if k != name}
                c.retire()  # waits for its running searches
            shutil.rmtree(collection_dir(self.data_dir, name), ignore_errors=True)

    # -- routed to one collection (indexer/collection.py) -------------------------------------------
    def add_variant(self, collection: str, spec: VariantSpec, partial: bool = False) -> None:
        """Add a variant. On a non-empty collection it starts empty: fill it with
        put_vectors (search covers the documents that have vectors so far).
        ``partial``: upserts may leave its vector out until :meth:`set_partial` clears
        it (a background build fills the gaps)."""
        self._route(collection, lambda c: c.add_variant(spec, partial))

    def set_partial(self, collection: str, variant: str, partial: bool) -> None:
        """Mark a variant as being built (upserts may omit it) or complete."""
        self._route(collection, lambda c: c.set_partial(variant, partial))

    def remove_variant(self, collection: str, name: str) -> None:
        """Drop a variant and its index and vectors; the default variant cannot go."""
        self._route(collection, lambda c: c.remove_variant(name))

    def set_default_variant(self, collection: str, name: str) -> None:
        self._route(collection, lambda c: c.set_default_variant(name))

    def documents_without_vector(self, collection: str, variant: str, after_seq: int,
                                 limit: int) -> list[tuple[int, str, str]]:
        """(seq, id, text) of documents that still lack ``variant``'s vector (backfill)."""
        return self._collection(collection).documents_without_vector(variant, after_seq, limit)

    def upsert(self, collection: str, docs: list[Document], vectors: dict[str, np.ndarray]) -> int:
        """Insert or replace `docs`; `vectors` has one (n, dim) array per variant, row i
        for docs[i]. Durable when it returns; visible to searches from then on."""
        return self._route(collection, lambda c: c.upsert(docs, vectors))

    def unchanged(self, collection: str, docs: list[Document]) -> set[str]:
        """Ids of `docs` already stored with the same text and metadata and a vector for
        every variant: the caller may skip encoding them."""
        return self._collection(collection).unchanged(docs)

    def delete(self, collection: str, ids: list[str]) -> int:
        """Delete the documents with these ids; unknown ids are ignored. Returns how
        many were deleted."""
        return self._route(collection, lambda c: c.delete(ids))

    def put_vectors(self, collection: str, variant: str, ids: list[str], vectors: np.ndarray,
                    expected_seqs: list[int] | None = None) -> int:
        """Store one variant's vectors for existing documents (backfill after
        add_variant, or re-encoding). Unknown ids are ignored, and with
        ``expected_seqs`` so are documents replaced since; returns how many were stored."""
        return self._route(collection, lambda c: c.put_vectors(variant, ids, vectors, expected_seqs))

    def get(self, collection: str, ids: list[str]) -> list[Document]:
        """The documents that exist among `ids`, in the order asked."""
        return self._collection(collection).get(ids)

    def search(self, collection: str, request: SearchRequest, vectors: np.ndarray | None = None,
               texts: Sequence[str] | None = None) -> list[list[Hit]]:
        """Top-k per query. `request` (indexer/request.py) says how; mode None takes the
        collection's default mode. `vectors` (q, dim), one row per query (a single
        (dim,) vector is one query; normalised here), for the dense modes (nearest,
        farthest, hybrid); `texts`, one per query, for the lexical ones (lexical,
        hybrid). Scores: cosine (nearest: largest first; farthest: smallest first),
        BM25 (lexical), fused (hybrid). Lexical and hybrid searches of a collection
        whose lexical index is still being backfilled raise Unavailable."""
        return self._collection(collection).search(request, vectors, texts)

    # -- lexical index backfill ------------------------------------------------------------------
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
        c = self._collections.get(name)
        return c is None or c.backfill_chunk(BACKFILL_CHUNK)

    def wait_for_backfill(self, timeout: float | None = None) -> bool:
        """Block until every collection's lexical index is complete; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not all(c.lexical_ready() for c in list(self._collections.values())):
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def wait_for_maintenance(self, timeout: float | None = None) -> bool:
        """Block until no background rebuild is running; False on timeout."""
        return self._jobs.wait(timeout)

    # -- operations ------------------------------------------------------------------------------------
    def snapshot(self, only_dirty: bool = False) -> None:
        """Write a snapshot of every index (or of the changed ones) and prune the
        change log up to the oldest snapshot."""
        with self._write_mutex:
            seq = self.store.max_seq()
            for c in list(self._collections.values()):
                c.snapshot(seq, only_dirty)
            infos = [i for c in self._collections.values() for i in c.snapshots.values()]
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
            chosen = ([self._collection(collection)] if collection is not None
                      else list(self._collections.values()))
            progress = Progress("rebuild", sum(c.stored_vectors() for c in chosen))
            for c in chosen:
                c.rebuild(progress)
            if collection is None:
                for name in list(self._unavailable):
                    try:
                        self._reopen(name)
                    except (FailedPrecondition, NotFound):
                        pass  # logged; verify() reports it
            self.snapshot(only_dirty=True)

    def verify(self) -> dict:
        """Check SQLite integrity, that every FAISS index holds exactly the vectors
        stored in SQLite, and that every snapshot file reads back. Returns
        {"ok": bool, "problems": [...], "collections": {...}}."""
        problems = [f"sqlite: {p}" for p in self.store.integrity_check()]
        problems += [f"{name}: unavailable: {why}" for name, why in sorted(self._unavailable.items())]
        report: dict[str, Any] = {}
        with self._write_mutex:
            for c in self._collections.values():
                report[c.name], found = c.verify()
                problems += found
        return {"ok": not problems, "problems": problems, "collections": report}

    def stats(self) -> dict:
        now = time.time()
        return {"data_dir": str(self.data_dir), "last_seq": self.store.max_seq(),
                "collections": {c.name: c.stats(now) for c in list(self._collections.values())},
                "unavailable": dict(self._unavailable)}
