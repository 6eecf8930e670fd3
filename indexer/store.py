"""The SQLite document store: the only durable place, the source of truth.

Tables: collections, variants, documents (client id, text, metadata JSON, version,
seq), vectors (one float32 blob per document and variant, so every FAISS index can
be rebuilt without re-encoding) and changes (an append-only log whose AUTOINCREMENT
key is the global, monotonically increasing sequence number; a document's `seq` is
the seq of the change that wrote its current version, and doubles as its FAISS id).

Durability: WAL journal with ``synchronous=FULL``. With WAL, ``NORMAL`` survives a
killed process but may lose the last committed transactions on power loss; an
upsert is acknowledged as soon as its transaction commits, so only FULL (fsync of the
WAL on every commit) keeps the promise "acknowledged survives a crash".

Lexical index (format 3, see indexer/lexical.py): lex_collections, lex_docs and
lex_postings, written in the same transaction as the documents they index, so a
killed process never leaves them out of step and a backup carries them. Collections
that existed before format 3 are backfilled in the background (``backfill_after``).

Threading: one writer connection, used only under the indexer's writer mutex; every
reading thread gets its own connection (WAL readers never block the writer).
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ranksearch.errors import FailedPrecondition
from ranksearch.indexer import lexical
from ranksearch.indexer.types import Document, IndexSpec, VariantSpec

DB_NAME = "ranksearch.sqlite3"
#: SQLite's limit on bound parameters is 32766 since 3.32; stay well below it
_CHUNK = 900

# Each entry upgrades the schema from version i to i + 1; never edit a shipped one,
# append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE collections (
        name TEXT PRIMARY KEY,
        default_variant TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE variants (
        collection TEXT NOT NULL,
        name TEXT NOT NULL,
        dim INTEGER NOT NULL,
        index_kind TEXT NOT NULL,
        index_params TEXT NOT NULL,
        encoder TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (collection, name)
    );
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
        prev_seq INTEGER,
        at REAL NOT NULL
    );
    CREATE TABLE documents (
        seq INTEGER PRIMARY KEY,
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        text TEXT NOT NULL,
        metadata TEXT NOT NULL,
        version INTEGER NOT NULL,
        UNIQUE (collection, id)
    );
    CREATE TABLE vectors (
        seq INTEGER NOT NULL,
        variant TEXT NOT NULL,  -- "collection/variant"
        vec BLOB NOT NULL,
        PRIMARY KEY (variant, seq)
    ) WITHOUT ROWID;
    CREATE INDEX vectors_by_seq ON vectors (seq);
    """,
    # 1 -> 2: vectors move from a WITHOUT ROWID table to a rowid table. A WITHOUT
    # ROWID table keeps each row inside its primary-key b-tree, and rows of a few
    # hundred floats spill into overflow pages: measured ~4.7 kB on disk per 1.5 kB
    # vector (width 384). A rowid table plus a unique (variant, seq) index stores the
    # blob once, in the table. Same columns, same uniqueness (INSERT OR REPLACE keeps
    # working through the unique index), so no code path changes.
    """
    CREATE TABLE vectors_v2 (
        seq INTEGER NOT NULL,
        variant TEXT NOT NULL,  -- "collection/variant"
        vec BLOB NOT NULL
    );
    INSERT INTO vectors_v2 (seq, variant, vec) SELECT seq, variant, vec FROM vectors ORDER BY variant, seq;
    DROP TABLE vectors;
    ALTER TABLE vectors_v2 RENAME TO vectors;
    CREATE UNIQUE INDEX vectors_by_variant ON vectors (variant, seq);
    CREATE INDEX vectors_by_seq ON vectors (seq);
    """,
    # 2 -> 3: the lexical (BM25) index, see indexer/lexical.py. Existing collections
    # get the default lexical config (analyzer auto, default mode nearest: searches
    # answer as before) and backfill_after = 0: the indexer backfills them in the
    # background, resumably (the cursor commits with each chunk).
    """
    CREATE TABLE lex_collections (
        cid INTEGER PRIMARY KEY AUTOINCREMENT,
        collection TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        docs INTEGER NOT NULL DEFAULT 0,
        len_title INTEGER NOT NULL DEFAULT 0,
        len_text INTEGER NOT NULL DEFAULT 0,
        backfill_after INTEGER
    );
    CREATE TABLE lex_docs (
        seq INTEGER PRIMARY KEY,
        cid INTEGER NOT NULL,
        len_title INTEGER NOT NULL,
        len_text INTEGER NOT NULL,
        terms TEXT NOT NULL
    );
    CREATE TABLE lex_postings (
        cid INTEGER NOT NULL,
        term TEXT NOT NULL,
        seq INTEGER NOT NULL,
        tf_title INTEGER NOT NULL,
        tf_text INTEGER NOT NULL,
        len_title INTEGER NOT NULL,
        len_text INTEGER NOT NULL,
        PRIMARY KEY (cid, term, seq)
    ) WITHOUT ROWID;
    INSERT INTO lex_collections (collection, config, backfill_after)
        SELECT name, '{"default_mode": "nearest", "hybrid": {"dense_candidates": 0, "dense_weight": 1.0, "fusion": "rrf", "lexical_candidates": 0, "lexical_weight": 1.0, "normalization": "minmax", "rrf_k": 60.0}, "lexical": {"analyzer": "auto", "b": 0.75, "k1": 1.5, "text_weight": 1.0, "title_field": "title", "title_weight": 1.0}}', 0
        FROM collections ORDER BY name
    """,
    # 3 -> 4: a content hash per document (see content_hash), so that an upsert of a
    # document whose text and metadata are already stored can skip encoding and
    # writing. Rows written before have NULL: the next upsert of each rewrites it.
    """
    ALTER TABLE documents ADD COLUMN content_hash TEXT;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


#: the writer's page cache and WAL checkpoint interval. The lexical index inserts
#: ~one posting per distinct term of each document, spread over the postings b-tree:
#: a larger cache keeps its inner pages in memory, and checkpointing every ~40 MB of
#: WAL instead of SQLite's 4 MB writes a page touched by many batches once per
#: checkpoint instead of once per batch (measured: upsert of 30k documents 3x faster).
_WRITER_CACHE_KIB = 65536
_WRITER_CHECKPOINT_PAGES = 10000


def _connect(path: Path, writer: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    if writer:
        conn.execute(f"PRAGMA cache_size=-{_WRITER_CACHE_KIB}")
        conn.execute(f"PRAGMA wal_autocheckpoint={_WRITER_CHECKPOINT_PAGES}")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION; returns the version found before."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    found = row[0] if row else 0
    if found > SCHEMA_VERSION:
        raise FailedPrecondition(
            "data_dir",
            f"schema version {found} is newer than this build supports ({SCHEMA_VERSION})",
        )
    for version in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # executescript() would commit on its own; run the statements one by one
            for stmt in MIGRATIONS[version].split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def content_hash(text: str, metadata: dict[str, str]) -> str:
    """sha256 of a document's text and metadata (keys sorted): equal hashes mean an
    upsert would store exactly what is stored already."""
    canonical = json.dumps([text, metadata], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _blob(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


class Store:
    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / DB_NAME
        self._writer = _connect(self.path, writer=True)
        migrate(self._writer)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    # -- connections -------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._writer.close()

    def _txn(self, commit: bool = True):
        """Writer transaction. ``commit=False`` leaves a successful transaction open:
        the caller then calls :meth:`commit` (or :meth:`rollback`) itself — the
        indexer does so under a collection's write lock, so that a search never
        sees SQLite a batch ahead of the in-memory indexes."""
        store = self

        class _Txn:
            def __enter__(self):
                store._writer.execute("BEGIN IMMEDIATE")
                return store._writer

            def __exit__(self, exc_type, exc, tb):
                if exc_type is not None:
                    store.rollback()
                elif commit:
                    store.commit()
                return False

        return _Txn()

    def commit(self) -> None:
        """Commit the writer's open transaction (durable when this returns)."""
        self._writer.execute("COMMIT")

    def rollback(self) -> None:
        if self._writer.in_transaction:  # a failed COMMIT may have rolled back already
            self._writer.execute("ROLLBACK")

    # -- collections and variants --------------------------------------------------------
    def load_collections(self) -> list[tuple[str, str, list[VariantSpec], str]]:
        """(name, default variant, variants, lexical config JSON) per collection."""
        conn = self._reader()
        out = []
        for name, default, config in conn.execute(
            "SELECT c.name, c.default_variant, l.config FROM collections c "
            "JOIN lex_collections l ON l.collection = c.name ORDER BY c.name"
        ):
            variants = [
                VariantSpec(vname, dim, IndexSpec(kind, json.loads(params)), encoder)
                for vname, dim, kind, params, encoder in conn.execute(
                    "SELECT name, dim, index_kind, index_params, encoder FROM variants "
                    "WHERE collection = ? ORDER BY created_at, name",
                    (name,),
                )
            ]
            out.append((name, default, variants, config))
        return out

    def create_collection(self, name: str, variants: list[VariantSpec], default: str, lexical_config: str) -> None:
        """``lexical_config``: JSON of the collection's lexical config and search
        defaults (lexical.encode_config); a new collection's lexical index is complete."""
        now = time.time()
        with self._txn() as conn:
            conn.execute(
                "INSERT INTO collections (name, default_variant, created_at) VALUES (?, ?, ?)",
                (name, default, now),
            )
            conn.execute("INSERT INTO lex_collections (collection, config) VALUES (?, ?)", (name, lexical_config))
            for spec in variants:
                self._insert_variant(conn, name, spec, now)

    @staticmethod
    def _insert_variant(conn, collection: str, spec: VariantSpec, now: float) -> None:
        conn.execute(
            "INSERT INTO variants (collection, name, dim, index_kind, index_params, encoder, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (collection, spec.name, spec.dim, spec.index.kind, json.dumps(spec.index.params), spec.encoder, now),
        )

    def add_variant(self, collection: str, spec: VariantSpec) -> None:
        with self._txn() as conn:
            self._insert_variant(conn, collection, spec, time.time())

    def remove_variant(self, collection: str, variant: str) -> None:
        """Drop one variant and its vectors (the documents stay)."""
        with self._txn() as conn:
            conn.execute("DELETE FROM vectors WHERE variant = ?", (f"{collection}/{variant}",))
            conn.execute("DELETE FROM variants WHERE collection = ? AND name = ?", (collection, variant))

    def set_default_variant(self, collection: str, variant: str) -> None:
        with self._txn() as conn:
            conn.execute("UPDATE collections SET default_variant = ? WHERE name = ?", (variant, collection))

    def delete_collection(self, name: str) -> None:
        with self._txn() as conn:
            conn.execute(
                "DELETE FROM vectors WHERE seq IN (SELECT seq FROM documents WHERE collection = ?)", (name,)
            )
            conn.execute("DELETE FROM documents WHERE collection = ?", (name,))
            cid = self._cid(conn, name)
            conn.execute("DELETE FROM lex_postings WHERE cid = ?", (cid,))
            conn.execute("DELETE FROM lex_docs WHERE cid = ?", (cid,))
            conn.execute("DELETE FROM lex_collections WHERE cid = ?", (cid,))
            conn.execute("DELETE FROM variants WHERE collection = ?", (name,))
            conn.execute("DELETE FROM collections WHERE name = ?", (name,))

    @staticmethod
    def _cid(conn: sqlite3.Connection, collection: str) -> int:
        return conn.execute("SELECT cid FROM lex_collections WHERE collection = ?", (collection,)).fetchone()[0]

    # -- writes ---------------------------------------------------------------------------
    def write_batch(
        self, collection: str, docs: list[Document], vectors: dict[str, np.ndarray],
        terms: list[lexical.DocTerms], commit: bool = True,
    ) -> list[tuple[int, int | None]]:
        """Upsert `docs` with their vectors (variant -> (n, dim) float32, unit rows) and
        their analysed terms (lexical index) in one transaction (left open when
        ``commit=False``, see :meth:`_txn`). Returns (new seq, replaced seq or None)
        per document."""
        now = time.time()
        out: list[tuple[int, int | None]] = []
        with self._txn(commit) as conn:
            cid = self._cid(conn, collection)
            replaced: list[int] = []
            for i, doc in enumerate(docs):
                row = conn.execute(
                    "SELECT seq, version FROM documents WHERE collection = ? AND id = ?", (collection, doc.id)
                ).fetchone()
                prev_seq, version = (row[0], row[1]) if row else (None, 0)
                seq = conn.execute(
                    "INSERT INTO changes (collection, id, op, prev_seq, at) VALUES (?, ?, 'upsert', ?, ?)",
                    (collection, doc.id, prev_seq, now),
                ).lastrowid
                if prev_seq is not None:
                    conn.execute("DELETE FROM vectors WHERE seq = ?", (prev_seq,))
                    conn.execute("DELETE FROM documents WHERE seq = ?", (prev_seq,))
                    replaced.append(prev_seq)
                conn.execute(
                    "INSERT INTO documents (seq, collection, id, text, metadata, version, content_hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (seq, collection, doc.id, doc.text, json.dumps(doc.metadata, sort_keys=True), version + 1,
                     content_hash(doc.text, doc.metadata)),
                )
                conn.executemany(
                    "INSERT INTO vectors (seq, variant, vec) VALUES (?, ?, ?)",
                    [(seq, f"{collection}/{variant}", _blob(mat[i])) for variant, mat in vectors.items()],
                )
                out.append((seq, prev_seq))
            lexical.delete_docs(conn, replaced)
            lexical.insert_docs(conn, cid, [(seq, t) for (seq, _), t in zip(out, terms)])
        return out

    def delete_ids(self, collection: str, ids: list[str], commit: bool = True) -> list[tuple[str, int]]:
        """Delete the documents that exist; returns (id, removed seq) for each. The
        transaction is left open when ``commit=False`` (see :meth:`_txn`)."""
        now = time.time()
        removed: list[tuple[str, int]] = []
        with self._txn(commit) as conn:
            for doc_id in ids:
                row = conn.execute(
                    "SELECT seq FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
                ).fetchone()
                if row is None:
                    continue
                conn.execute(
                    "INSERT INTO changes (collection, id, op, prev_seq, at) VALUES (?, ?, 'delete', ?, ?)",
                    (collection, doc_id, row[0], now),
                )
                conn.execute("DELETE FROM vectors WHERE seq = ?", (row[0],))
                conn.execute("DELETE FROM documents WHERE seq = ?", (row[0],))
                removed.append((doc_id, row[0]))
            lexical.delete_docs(conn, [seq for _, seq in removed])
        return removed

    def put_vectors(self, collection: str, variant: str, ids: list[str], mat: np.ndarray,
                    expected_seqs: Sequence[int] | None = None) -> list[int | None]:
        """Store (or overwrite) one variant's vectors for existing documents (backfill
        after add_variant). Returns the seq of each id, None where it does not exist —
        or, with ``expected_seqs``, where the document was replaced since that seq was
        read (its vector came with the replacing upsert and must not be overwritten)."""
        seqs: list[int | None] = []
        with self._txn() as conn:
            for i, doc_id in enumerate(ids):
                row = conn.execute(
                    "SELECT seq FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
                ).fetchone()
                if row is None or (expected_seqs is not None and row[0] != expected_seqs[i]):
                    seqs.append(None)
                    continue
                conn.execute(
                    "INSERT OR REPLACE INTO vectors (seq, variant, vec) VALUES (?, ?, ?)",
                    (row[0], f"{collection}/{variant}", _blob(mat[i])),
                )
                seqs.append(row[0])
        return seqs

    def backfill_pending(self, collection: str, limit: int) -> list[tuple[int, str, dict[str, str]]]:
        """Up to `limit` (seq, text, metadata) of documents after the collection's
        backfill cursor that the lexical index lacks, in seq order ([] when done)."""
        conn = self._reader()
        stats = lexical.read_stats(conn, collection)
        if stats is None or stats.ready:
            return []
        rows = conn.execute(
            "SELECT d.seq, d.text, d.metadata FROM documents d WHERE d.collection = ? AND d.seq > ? "
            "AND NOT EXISTS (SELECT 1 FROM lex_docs l WHERE l.seq = d.seq) ORDER BY d.seq LIMIT ?",
            (collection, stats.backfill_after, limit),
        ).fetchall()
        return [(seq, text, json.loads(meta)) for seq, text, meta in rows]

    def write_backfill(self, collection: str, items: list[tuple[int, lexical.DocTerms]], done: bool,
                       commit: bool = True) -> int:
        """Index backfilled documents (those still current and not yet indexed) and
        move the cursor past them, or mark the index complete when `done`, in one
        transaction. Returns how many were indexed."""
        with self._txn(commit) as conn:
            cid = self._cid(conn, collection)
            current = [(seq, terms) for seq, terms in items if conn.execute(
                "SELECT 1 FROM documents WHERE seq = ? AND NOT EXISTS (SELECT 1 FROM lex_docs WHERE seq = ?)",
                (seq, seq)).fetchone()]
            lexical.insert_docs(conn, cid, current)
            if done:
                conn.execute("UPDATE lex_collections SET backfill_after = NULL WHERE cid = ?", (cid,))
            elif items:
                conn.execute("UPDATE lex_collections SET backfill_after = ? WHERE cid = ?", (items[-1][0], cid))
        return len(current)

    def lexical_stats(self, collection: str) -> lexical.LexicalStats | None:
        return lexical.read_stats(self._reader(), collection)

    def lexical_postings(self, cid: int, terms: Sequence[str]) -> list[lexical.Postings]:
        conn = self._reader()
        return [lexical.read_postings(conn, cid, term) for term in terms]

    def prune_changes(self, upto_seq: int) -> None:
        """Drop change-log rows up to `upto_seq` (all snapshots contain them).
        AUTOINCREMENT keeps seqs from ever being reused."""
        with self._txn() as conn:
            conn.execute("DELETE FROM changes WHERE seq <= ?", (upto_seq,))

    # -- reads ----------------------------------------------------------------------------
    def live_documents(self, collection: str) -> Iterator[tuple[int, str, dict[str, str]]]:
        """(seq, id, metadata) of every document, in seq order."""
        cur = self._reader().execute(
            "SELECT seq, id, metadata FROM documents WHERE collection = ? ORDER BY seq", (collection,)
        )
        for seq, doc_id, meta in cur:
            yield seq, doc_id, json.loads(meta)

    def documents_without_vector(self, collection: str, variant: str, after_seq: int,
                                 limit: int) -> list[tuple[int, str, str]]:
        """(seq, id, text) of up to ``limit`` documents with seq > ``after_seq`` that have
        no vector for ``variant`` yet, in seq order (the backfill of a new variant)."""
        return self._reader().execute(
            "SELECT d.seq, d.id, d.text FROM documents d WHERE d.collection = ? AND d.seq > ? "
            "AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.variant = ? AND v.seq = d.seq) "
            "ORDER BY d.seq LIMIT ?", (collection, after_seq, f"{collection}/{variant}", limit)
        ).fetchall()

    def load_vectors(
        self, collection: str, variant: str, dim: int, seqs: Iterable[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stored vectors of one variant: (seqs (n,) int64, vecs (n, dim) float32).
        All of the collection's vectors when `seqs` is None, else those of `seqs`."""
        conn = self._reader()
        key = f"{collection}/{variant}"
        if seqs is None:
            rows = conn.execute(
                "SELECT seq, vec FROM vectors WHERE variant = ? ORDER BY seq", (key,)
            ).fetchall()
        else:
            rows = []
            wanted = sorted(seqs)
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                rows += conn.execute(
                    f"SELECT seq, vec FROM vectors WHERE variant = ? AND seq IN ({marks})", (key, *chunk)
                ).fetchall()
            rows.sort()
        out_seqs = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").astype(np.float32, copy=False)
        return out_seqs, vecs.reshape(len(rows), dim)

    def texts(self, seqs: Sequence[int]) -> dict[int, str]:
        conn = self._reader()
        out: dict[int, str] = {}
        for chunk in _chunks(list(seqs)):
            marks = ",".join("?" * len(chunk))
            out.update(conn.execute(f"SELECT seq, text FROM documents WHERE seq IN ({marks})", tuple(chunk)))
        return out

    def get(self, collection: str, ids: Sequence[str]) -> dict[str, Document]:
        conn = self._reader()
        out: dict[str, Document] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for doc_id, text, meta, version in conn.execute(
                f"SELECT id, text, metadata, version FROM documents WHERE collection = ? AND id IN ({marks})",
                (collection, *chunk),
            ):
                out[doc_id] = Document(doc_id, text, json.loads(meta), version)
        return out

    def unchanged(self, collection: str, docs: Sequence[Document], variants: Sequence[str]) -> set[str]:
        """Ids of `docs` stored with the same text and metadata (content_hash) and with a
        vector for every one of `variants`: upserting them again would change nothing."""
        conn = self._reader()
        wanted = {d.id: content_hash(d.text, d.metadata) for d in docs}
        same: dict[int, str] = {}  # seq -> id
        for chunk in _chunks(list(wanted)):
            marks = ",".join("?" * len(chunk))
            for seq, doc_id, digest in conn.execute(
                f"SELECT seq, id, content_hash FROM documents WHERE collection = ? AND id IN ({marks})",
                (collection, *chunk),
            ):
                if digest == wanted[doc_id]:
                    same[seq] = doc_id
        keys = [f"{collection}/{v}" for v in variants]
        out: set[str] = set()
        for chunk in _chunks(list(same), _CHUNK - len(keys)):
            marks, vmarks = ",".join("?" * len(chunk)), ",".join("?" * len(keys))
            for seq, n in conn.execute(
                f"SELECT seq, COUNT(*) FROM vectors WHERE seq IN ({marks}) AND variant IN ({vmarks}) GROUP BY seq",
                (*chunk, *keys),
            ):
                if n == len(keys):
                    out.add(same[seq])
        return out

    def max_seq(self) -> int:
        row = self._reader().execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        return row[0] if row else 0

    def vector_seqs(self, collection: str, variant: str) -> np.ndarray:
        """Sorted seqs of the documents that have a vector for `variant`."""
        rows = self._reader().execute(
            "SELECT seq FROM vectors WHERE variant = ? ORDER BY seq", (f"{collection}/{variant}",)
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def count_documents(self, collection: str) -> int:
        return self._reader().execute(
            "SELECT COUNT(*) FROM documents WHERE collection = ?", (collection,)
        ).fetchone()[0]

    def count_vectors(self, collection: str, variant: str) -> int:
        return self._reader().execute(
            "SELECT COUNT(*) FROM vectors WHERE variant = ?", (f"{collection}/{variant}",)
        ).fetchone()[0]

    def integrity_check(self) -> list[str]:
        rows = self._reader().execute("PRAGMA integrity_check").fetchall()
        return [] if rows == [("ok",)] else [r[0] for r in rows]
