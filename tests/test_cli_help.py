"""Every subcommand's every option and argument has help text, and no help text
cites documents that are not in the repository."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from ranksearch.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "ranksearch"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subparsers(sub, f"{prefix} {name}")


def test_every_option_has_help():
    missing = []
    for name, parser in _subparsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            if not action.help:
                missing.append(f"{name}: {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_no_help_or_user_doc_cites_files_outside_the_repo():
    texts = {f"{name} --help": parser.format_help() for name, parser in _subparsers(build_parser())}
    for path in [REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("deploy/*.md"),
                 *REPO.glob("proto/*.md")]:
        texts[str(path.relative_to(REPO))] = path.read_text(encoding="utf-8")
    cited = {where for where, text in texts.items() if re.search(r"\b(PAPER|DESIGN)\.md\b", text)}
    assert cited == set()
    assert (REPO / "docs" / "BACKGROUND.md").is_file()
    assert "docs/BACKGROUND.md" in (REPO / "README.md").read_text(encoding="utf-8")


def test_indexer_commands_name_the_store_folder():
    for name, parser in _subparsers(build_parser()):
        if name.split()[-1] in {"backup", "restore", "verify", "rebuild"} and len(name.split()) == 2:
            usage = parser.format_usage()
            assert "INDEX_DIR" in usage and "DATA_DIR" not in usage, usage
