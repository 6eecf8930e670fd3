"""Indexer subcommands: backup, restore, verify, rebuild."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


_INDEX_HELP = ("the store folder: <data_dir>/index of a server's data dir "
               "(e.g. /var/lib/ranksearch/index), not the data dir itself")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("backup", help="online, consistent backup of a store (server may run)")
    p.add_argument("index_dir", type=Path, metavar="INDEX_DIR", help=_INDEX_HELP)
    p.add_argument("dest", type=Path, metavar="DEST", help="new or empty directory for the backup")
    p.set_defaults(func=_backup)

    p = subparsers.add_parser("restore", help="restore a backup into an empty store folder (server stopped)")
    p.add_argument("src", type=Path, metavar="BACKUP_DIR", help="a folder written by `ranksearch backup`")
    p.add_argument("index_dir", type=Path, metavar="INDEX_DIR",
                   help="new or empty folder; then it is <data_dir>/index of the server")
    p.set_defaults(func=_restore)

    p = subparsers.add_parser("verify", help="check that FAISS indexes, snapshots and SQLite agree (server stopped)")
    p.add_argument("index_dir", type=Path, metavar="INDEX_DIR", help=_INDEX_HELP)
    p.set_defaults(func=_verify)

    p = subparsers.add_parser("rebuild", help="rebuild FAISS indexes from the vectors stored in SQLite "
                                              "(server stopped; progress with ETA in the log lines)")
    p.add_argument("index_dir", type=Path, metavar="INDEX_DIR", help=_INDEX_HELP)
    p.add_argument("--collection", default=None, help="only this collection (default: all)")
    p.set_defaults(func=_rebuild)


def _check_index_dir(index_dir: Path) -> Path:
    from ranksearch.errors import NotFound
    from ranksearch.indexer.store import DB_NAME

    if not (index_dir / DB_NAME).is_file():
        hint = (f"; it is a server data dir: pass its store folder {index_dir / 'index'}"
                if (index_dir / "index" / DB_NAME).is_file() else "")
        raise NotFound("INDEX_DIR", f"{index_dir} holds no ranksearch database ({DB_NAME}){hint}")
    return index_dir


def _open(index_dir: Path):
    from ranksearch.indexer.config import IndexerConfig
    from ranksearch.indexer.indexer import Indexer

    _check_index_dir(index_dir)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    indexer = Indexer(index_dir, IndexerConfig(snapshot_interval_s=0))
    indexer.open()
    return indexer


def _backup(args) -> int:
    from ranksearch.indexer.backup import backup

    manifest = backup(_check_index_dir(args.index_dir), args.dest)
    print(f"backed up {manifest['documents']} documents (seq {manifest['seq']}) to {args.dest}")
    return 0


def _restore(args) -> int:
    from ranksearch.indexer.backup import restore

    manifest = restore(args.src, args.index_dir)
    print(f"restored {manifest['documents']} documents (seq {manifest['seq']}) into {args.index_dir}")
    return 0


def _verify(args) -> int:
    indexer = _open(args.index_dir)
    try:
        report = indexer.verify()
        report["recovery"] = indexer.recovery
    finally:
        indexer.close()
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report["ok"] else 1


def _rebuild(args) -> int:
    indexer = _open(args.index_dir)
    try:
        indexer.rebuild(args.collection)
        report = indexer.verify()
    finally:
        indexer.close()
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report["ok"] else 1
