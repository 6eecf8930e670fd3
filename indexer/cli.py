"""Indexer subcommands: backup, restore, verify, rebuild."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("backup", help="online, consistent backup of a data directory")
    p.add_argument("data_dir", type=Path, metavar="DATA_DIR")
    p.add_argument("dest", type=Path, metavar="DEST", help="new or empty directory")
    p.set_defaults(func=_backup)

    p = subparsers.add_parser("restore", help="restore a backup into an empty data directory")
    p.add_argument("src", type=Path, metavar="SRC")
    p.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="new or empty directory")
    p.set_defaults(func=_restore)

    p = subparsers.add_parser("verify", help="check that FAISS indexes, snapshots and SQLite agree")
    p.add_argument("data_dir", type=Path, metavar="DATA_DIR")
    p.set_defaults(func=_verify)

    p = subparsers.add_parser("rebuild", help="rebuild FAISS indexes from the vectors stored in SQLite")
    p.add_argument("data_dir", type=Path, metavar="DATA_DIR")
    p.add_argument("--collection", default=None, help="only this collection (default: all)")
    p.set_defaults(func=_rebuild)


def _open(data_dir: Path):
    from ranksearch.errors import NotFound
    from ranksearch.indexer.config import IndexerConfig
    from ranksearch.indexer.indexer import Indexer
    from ranksearch.indexer.store import DB_NAME

    if not (data_dir / DB_NAME).is_file():
        raise NotFound("DATA_DIR", f"{data_dir} holds no ranksearch database ({DB_NAME})")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    indexer = Indexer(data_dir, IndexerConfig(snapshot_interval_s=0))
    indexer.open()
    return indexer


def _backup(args) -> int:
    from ranksearch.indexer.backup import backup

    manifest = backup(args.data_dir, args.dest)
    print(f"backed up {manifest['documents']} documents (seq {manifest['seq']}) to {args.dest}")
    return 0


def _restore(args) -> int:
    from ranksearch.indexer.backup import restore

    manifest = restore(args.src, args.data_dir)
    print(f"restored {manifest['documents']} documents (seq {manifest['seq']}) into {args.data_dir}")
    return 0


def _verify(args) -> int:
    indexer = _open(args.data_dir)
    try:
        report = indexer.verify()
        report["recovery"] = indexer.recovery
    finally:
        indexer.close()
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report["ok"] else 1


def _rebuild(args) -> int:
    indexer = _open(args.data_dir)
    try:
        indexer.rebuild(args.collection)
        report = indexer.verify()
    finally:
        indexer.close()
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report["ok"] else 1
