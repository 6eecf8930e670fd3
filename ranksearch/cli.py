"""`ranksearch` console script.

Each package owns its subcommands in its own `cli.py`, exposing
``register(subparsers) -> None``; every subparser sets ``func`` (a callable taking
the parsed args and returning an exit code). This module only assembles them, and
imports each package lazily so `ranksearch --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# Nothing may reach a model hub: set before any HF library can be imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_PACKAGES = (
    "ranksearch.encoder.cli",  # train, convert, corpus
    "ranksearch.indexer.cli",  # backup, restore, verify, rebuild
    "ranksearch.service.cli",  # serve, config, query, upsert/import, delete, get, stats, collections, version, doctor
    "ranksearch.service.migrate_cli",  # migrate --to milvus
    "ranksearch.evaluation.cli",  # eval, probe
    "ranksearch.service.ab_cli",  # ab (live experiments)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ranksearch",
        description="On-premise semantic search with a rank-configurable attention encoder.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in _PACKAGES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:  # a package not built yet
            if exc.name == mod_name:
                continue
            raise
        mod.register(sub)
    return parser


def utf8_output() -> None:
    """Print Japanese (and any text) as UTF-8 whatever the locale or PYTHONIOENCODING
    says, instead of failing on it or escaping it."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    utf8_output()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from ranksearch.errors import RanksearchError

    try:
        return int(args.func(args) or 0)
    except RanksearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
