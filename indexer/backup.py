"""Online backup and restore of a data directory.

backup: copies the snapshot files first (each is complete: snapshots are replaced by
atomic rename), then the database with SQLite's online backup API in a single step,
which reads one consistent state while the indexer keeps writing. The database can
be newer than the snapshots; on start the indexer replays the difference (and drops
snapshot ids the database does not have), so any such pair restores consistently.
restore: only into an empty (or missing) directory; checks the manifest checksums
and SQLite's integrity before anything is served from it.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

from ranksearch.fsutil import fsync_path, sha256_file
from ranksearch.errors import FailedPrecondition, NotFound
from ranksearch.indexer.snapshot import SUFFIX
from ranksearch.indexer.store import DB_NAME

MANIFEST = "ranksearch-backup.json"


def _require_empty(path: Path, field: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FailedPrecondition(field, f"{path} must be an empty directory or not exist")


def backup(data_dir: Path | str, dest: Path | str) -> dict:
    """Back up `data_dir` (live or not) into the new directory `dest`; returns the manifest."""
    data_dir, dest = Path(data_dir), Path(dest)
    db = data_dir / DB_NAME
    if not db.is_file():
        raise NotFound("data_dir", f"{data_dir} holds no ranksearch database ({DB_NAME})")
    _require_empty(dest, "dest")
    dest.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for snap in sorted((data_dir / "snapshots").glob(f"*/*{SUFFIX}")):
        rel = snap.relative_to(data_dir)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(snap, dest / rel)
        except FileNotFoundError:  # collection deleted meanwhile
            continue
        files[str(rel)] = sha256_file(dest / rel)
        fsync_path(dest / rel)
    src = sqlite3.connect(db, timeout=30.0)
    dst = sqlite3.connect(dest / DB_NAME)
    try:
        src.backup(dst)  # pages=-1: the whole database in one step, one consistent read
        row = dst.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        seq = row[0] if row else 0
        docs = dst.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        dst.close()
        src.close()
    files[DB_NAME] = sha256_file(dest / DB_NAME)
    fsync_path(dest / DB_NAME)
    manifest = {"format": 1, "created_at": time.time(), "seq": seq, "documents": docs, "files": files}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    fsync_path(dest / MANIFEST)
    fsync_path(dest)
    return manifest


def restore(src: Path | str, data_dir: Path | str) -> dict:
    """Restore the backup in `src` into `data_dir`, which must be empty or missing."""
    src, data_dir = Path(src), Path(data_dir)
    manifest_path = src / MANIFEST
    if not manifest_path.is_file():
        raise NotFound("src", f"{src} is not a ranksearch backup (no {MANIFEST})")
    _require_empty(data_dir, "data_dir")
    manifest = json.loads(manifest_path.read_text())
    for rel, digest in manifest["files"].items():
        if not (src / rel).is_file() or sha256_file(src / rel) != digest:
            raise FailedPrecondition("src", f"{rel} is missing or does not match the backup manifest")
    data_dir.mkdir(parents=True, exist_ok=True)
    for rel in manifest["files"]:
        (data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, data_dir / rel)
        fsync_path(data_dir / rel)
    conn = sqlite3.connect(data_dir / DB_NAME)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    if result != [("ok",)]:
        raise FailedPrecondition("src", f"restored database fails integrity_check: {result[:3]}")
    fsync_path(data_dir)
    return manifest
