"""The durable record of live experiments: impressions, clicks, shadow comparisons,
variant builds, experiment settings and the audit log.

One SQLite file, ``<data_dir>/service/experiments.sqlite`` (WAL, synchronous=FULL),
separate from the document store so experiment traffic never contends with document
writes. Impressions are written by a background writer in group commits (every
``flush_ms``): a search never waits for a disk sync. Feedback first flushes the
writer, so a click always finds the impression it names; an impression whose
response was sent less than ``flush_ms`` before a crash can be lost (its query id then
answers NOT_FOUND). Clicks, settings and audit entries are committed before the RPC
returns.

The shadow log is append-only and bounded: past ``shadow_rows`` rows the oldest go.
"""
from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS impressions (
    query_id TEXT PRIMARY KEY, collection TEXT NOT NULL, at REAL NOT NULL,
    kind TEXT NOT NULL,            -- 'split' (one variant answered) or 'interleave'
    variant TEXT NOT NULL,         -- the answering variant; 'a+b' names for interleave
    variant_a TEXT NOT NULL DEFAULT '', variant_b TEXT NOT NULL DEFAULT '',
    ids TEXT NOT NULL,             -- JSON list of the displayed ids
    teams TEXT NOT NULL DEFAULT '' -- JSON list of 'a'/'b' per displayed id (interleave)
);
CREATE INDEX IF NOT EXISTS impressions_by_collection ON impressions (collection, at);
CREATE TABLE IF NOT EXISTS clicks (
    query_id TEXT NOT NULL, position INTEGER NOT NULL, doc_id TEXT NOT NULL,
    dwell_ms REAL, at REAL NOT NULL, PRIMARY KEY (query_id, position)
);
CREATE TABLE IF NOT EXISTS shadow (
    id INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, at REAL NOT NULL,
    primary_variant TEXT NOT NULL, shadow_variant TEXT NOT NULL,
    overlap REAL NOT NULL, tau REAL, primary_ms REAL NOT NULL, shadow_ms REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS builds (
    collection TEXT NOT NULL, variant TEXT NOT NULL, state TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,
    after_seq INTEGER NOT NULL DEFAULT 0, started_at REAL NOT NULL,
    finished_at REAL, error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (collection, variant)
);
CREATE TABLE IF NOT EXISTS settings (
    collection TEXT PRIMARY KEY, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL,
    action TEXT NOT NULL, collection TEXT NOT NULL, details TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Impression:
    query_id: str
    collection: str
    kind: str
    variant: str
    ids: list[str]
    teams: list[str]
    variant_a: str = ""
    variant_b: str = ""
    at: float = 0.0


class ExperimentLog:
    def __init__(self, path: Path, *, flush_ms: float = 50.0, shadow_rows: int = 100_000):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.shadow_rows = shadow_rows
        self._flush_s = flush_ms / 1000.0
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()  # one connection, serialised
        self._pending: queue.Queue[Impression | None] = queue.Queue()
        self._flushed = threading.Condition()
        self._queued = self._written = 0  # impressions handed in / committed
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="experiment-log", daemon=True)
        self._writer.start()

    # -- impressions: group commit on the writer thread --------------------------------
    def add_impression(self, imp: Impression) -> None:
        with self._flushed:
            self._queued += 1
        self._pending.put(imp)

    def _write_loop(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self._flush_s
            stop = False
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = self._pending.get(timeout=left)
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[Impression]) -> None:
        rows = [(i.query_id, i.collection, i.at or time.time(), i.kind, i.variant, i.variant_a,
                 i.variant_b, json.dumps(i.ids), json.dumps(i.teams) if i.teams else "")
                for i in batch]
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT OR IGNORE INTO impressions (query_id, collection, at, kind, variant, "
                "variant_a, variant_b, ids, teams) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self._conn.execute("COMMIT")
        with self._flushed:
            self._written += len(batch)
            self._flushed.notify_all()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every impression queued before this call is committed."""
        with self._flushed:
            target = self._queued
            self._flushed.wait_for(lambda: self._written >= target, timeout=timeout)

    def impression(self, query_id: str) -> Impression | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT query_id, collection, kind, variant, ids, teams, variant_a, variant_b, at "
                "FROM impressions WHERE query_id = ?", (query_id,)).fetchone()
        if row is None:
            return None
        return Impression(query_id=row[0], collection=row[1], kind=row[2], variant=row[3],
                          ids=json.loads(row[4]), teams=json.loads(row[5]) if row[5] else [],
                          variant_a=row[6], variant_b=row[7], at=row[8])

    # -- clicks -------------------------------------------------------------------------
    def add_clicks(self, query_id: str, clicks: list[tuple[int, str, float | None]]) -> int:
        """(position, doc id, dwell ms or None) per click; a repeated click on the same
        position is counted once. Committed on return; returns how many were new."""
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN")
            before = self._conn.total_changes
            self._conn.executemany(
                "INSERT OR IGNORE INTO clicks (query_id, position, doc_id, dwell_ms, at) "
                "VALUES (?, ?, ?, ?, ?)", [(query_id, p, d, w, now) for p, d, w in clicks])
            added = self._conn.total_changes - before
            self._conn.execute("COMMIT")
        return added

    # -- shadow log ---------------------------------------------------------------------
    def add_shadow(self, collection: str, primary: str, shadow: str, overlap: float,
                   tau: float | None, primary_ms: float, shadow_ms: float) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            cur = self._conn.execute(
                "INSERT INTO shadow (collection, at, primary_variant, shadow_variant, overlap, tau, "
                "primary_ms, shadow_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (collection, time.time(), primary, shadow, overlap, tau, primary_ms, shadow_ms))
            if cur.lastrowid and cur.lastrowid % 1000 == 0:  # trim now and then, not per row
                self._conn.execute("DELETE FROM shadow WHERE id <= ?", (cur.lastrowid - self.shadow_rows,))
            self._conn.execute("COMMIT")

    # -- settings, builds, audit -----------------------------------------------------------
    def settings(self, collection: str) -> dict[str, Any]:
        with self._lock:
            row = self._conn.execute("SELECT data FROM settings WHERE collection = ?",
                                     (collection,)).fetchone()
        return json.loads(row[0]) if row else {}

    def all_settings(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT collection, data FROM settings").fetchall()
        return {c: json.loads(d) for c, d in rows}

    def set_settings(self, collection: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO settings (collection, data) VALUES (?, ?)",
                               (collection, json.dumps(data, sort_keys=True)))

    def set_build(self, collection: str, variant: str, *, state: str, done: int, total: int,
                  after_seq: int, error: str = "") -> None:
        now = time.time()
        with self._lock:
            self._conn.execute(
                "INSERT INTO builds (collection, variant, state, done, total, after_seq, started_at, "
                "finished_at, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (collection, variant) DO UPDATE SET state = excluded.state, "
                "done = excluded.done, total = excluded.total, after_seq = excluded.after_seq, "
                "finished_at = excluded.finished_at, error = excluded.error",
                (collection, variant, state, done, total, after_seq, now,
                 now if state != "building" else None, error))

    def builds(self) -> dict[tuple[str, str], dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT collection, variant, state, done, total, after_seq, started_at, finished_at, "
                "error FROM builds").fetchall()
        return {(r[0], r[1]): {"state": r[2], "done": r[3], "total": r[4], "after_seq": r[5],
                               "started_at": r[6], "finished_at": r[7], "error": r[8]} for r in rows}

    def drop_build(self, collection: str, variant: str | None = None) -> None:
        with self._lock:
            if variant is None:
                self._conn.execute("DELETE FROM builds WHERE collection = ?", (collection,))
            else:
                self._conn.execute("DELETE FROM builds WHERE collection = ? AND variant = ?",
                                   (collection, variant))

    def audit(self, who: str, action: str, collection: str, details: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO audit (at, who, action, collection, details) VALUES (?, ?, ?, ?, ?)",
                (time.time(), who, action, collection, json.dumps(details, sort_keys=True)))

    def audit_entries(self, collection: str = "", limit: int = 100) -> list[dict[str, Any]]:
        sql = "SELECT at, who, action, collection, details FROM audit"
        args: tuple = ()
        if collection:
            sql += " WHERE collection = ?"
            args = (collection,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id DESC LIMIT ?", args + (limit,)).fetchall()
        return [{"at": r[0], "who": r[1], "action": r[2], "collection": r[3],
                 "details": json.loads(r[4])} for r in rows]

    # -- readout ----------------------------------------------------------------------------
    def export(self, collection: str, since: float = 0.0) -> dict[str, Any]:
        """Everything the readout needs for one collection (plain lists)."""
        self.flush()
        with self._lock:
            imps = self._conn.execute(
                "SELECT query_id, kind, variant, variant_a, variant_b, ids, teams FROM impressions "
                "WHERE collection = ? AND at >= ?", (collection, since)).fetchall()
            clicks = self._conn.execute(
                "SELECT c.query_id, c.position, c.dwell_ms FROM clicks c JOIN impressions i "
                "ON i.query_id = c.query_id WHERE i.collection = ? AND i.at >= ?",
                (collection, since)).fetchall()
            shadow = self._conn.execute(
                "SELECT primary_variant, shadow_variant, overlap, tau, primary_ms, shadow_ms "
                "FROM shadow WHERE collection = ? AND at >= ?", (collection, since)).fetchall()
        by_q: dict[str, list[int]] = {}
        for qid, pos, _ in clicks:
            by_q.setdefault(qid, []).append(int(pos))
        return {
            "impressions": [{"query_id": q, "kind": k, "variant": v, "variant_a": a, "variant_b": b,
                             "n": len(json.loads(ids)), "teams": json.loads(t) if t else [],
                             "clicks": sorted(by_q.get(q, []))}
                            for q, k, v, a, b, ids, t in imps],
            "shadow": [{"primary": p, "shadow": s, "overlap": o, "tau": t, "primary_ms": pm,
                        "shadow_ms": sm} for p, s, o, t, pm, sm in shadow],
        }

    def drop_collection(self, collection: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM settings WHERE collection = ?", (collection,))
            self._conn.execute("DELETE FROM builds WHERE collection = ?", (collection,))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pending.put(None)
        self._writer.join(timeout=5)
        with self._lock:
            self._conn.close()
