"""`ranksearch migrate --to milvus`: copy an embedded data directory's collections
into the Milvus store of the config (resumable, verified). See indexer/migrate.py."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("migrate", help="copy collections from the embedded store into Milvus "
                       "(resumable; verified by count and sampled self-search)")
    p.add_argument("--to", required=True, choices=["milvus"], help="target store")
    p.add_argument("--config", help="YAML config whose `store:` section (kind: milvus) names the target")
    p.add_argument("--data-dir", help="embedded data directory (default: data_dir of the config)")
    p.add_argument("--collection", action="append", help="only this collection (repeatable; default: all)")
    p.add_argument("--batch", type=int, default=500, help="documents per Milvus upsert and checkpoint")
    p.add_argument("--sample", type=int, default=20, help="documents self-searched per variant to verify")
    p.set_defaults(func=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    from ranksearch.errors import ConfigError, InvalidArgument
    from ranksearch.indexer import Indexer
    from ranksearch.indexer.migrate import migrate
    from ranksearch.service.config import load_config
    from ranksearch.service.storage import make_store

    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    config = load_config(args.config, overrides)
    if config.store.kind != "milvus":
        raise ConfigError("store.kind", "the config must name the target: store: {kind: milvus, uri: ...}")
    if not 1 <= args.batch <= 10_000:
        raise InvalidArgument("--batch", f"must be between 1 and 10000, got {args.batch}")
    source = Indexer(config.data_path / "index", config.indexer_config())
    source.open()  # exclusive: the embedded server must be stopped
    target = make_store(config)
    try:
        target.open()
        copied = 0

        def progress(n: int) -> None:
            nonlocal copied
            copied += n
            print(f"copied {copied} documents", file=sys.stderr, flush=True)

        report = migrate(source, target, config.data_path / "service", args.collection, args.batch,
                         args.sample, progress)
    finally:
        target.close()
        source.close()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0 if report["ok"] else 1
