"""Move collections from the embedded store (SQLite + FAISS) into the Milvus store,
resumably, and verify the result.

Nothing is re-encoded: the vectors stored in SQLite are copied as they are, so the
Milvus collection serves the same nearest/farthest results. The collection's lexical
settings (analyzer, BM25 k1/b, title field and weights) and search defaults go with
it, and the Milvus store analyses each copied document with that analyzer, so
lexical and hybrid searches serve the same results too. Documents go in seq
order (the order of their last write); after each batch Milvus has acknowledged, a
checkpoint file records the last seq copied, so an interrupted run continues from
there (upserts are idempotent by id: a batch copied twice changes nothing). Run it
with the embedded server stopped (the Indexer's lock ensures that): a document
deleted after a partial run would otherwise stay in Milvus.

Verification: the document count on both sides, and a sampled self-search: each
sampled document, searched in Milvus with its own stored vector, is among the top
hits with a score of ~1 for every variant; the first few sampled documents' texts,
as lexical queries, get the same BM25 scores from both stores.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any, Callable

from ranksearch.errors import FailedPrecondition, NotFound, Unavailable
from ranksearch.indexer.indexer import Indexer
from ranksearch.indexer.milvus_store import MilvusStore
from ranksearch.indexer.request import SearchRequest
from ranksearch.indexer.types import Document

SAMPLE = 20
LEXICAL_SAMPLE = 5  # of the sampled documents, also checked as lexical queries
LEXICAL_QUERY_CHARS = 200


def _checkpoint_path(folder: Path, collection: str) -> Path:
    return folder / f"migrate-{collection}.json"


def _read_checkpoint(path: Path) -> int:
    return int(json.loads(path.read_text())["last_seq"]) if path.exists() else 0


def _write_checkpoint(path: Path, collection: str, last_seq: int, copied: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"collection": collection, "last_seq": last_seq, "copied": copied}))
    os.replace(tmp, path)


def _ensure_target(source: Indexer, target: MilvusStore, name: str) -> None:
    info = source.get_collection(name)
    have = {c.name: c for c in target.list_collections()}
    if name not in have:
        target.create_collection(name, list(info.variants), info.default_variant,
                                 lexical_config=info.lexical, defaults=info.defaults)
        return
    theirs = [(v.name, v.dim) for v in have[name].variants]
    ours = [(v.name, v.dim) for v in info.variants]
    if theirs != ours:
        raise FailedPrecondition("collection", f"{name!r} exists in Milvus with variants {theirs}, "
                                 f"the embedded store has {ours}; drop one or rename")
    if have[name].lexical != info.lexical:
        raise FailedPrecondition("collection", f"{name!r} exists in Milvus with lexical settings "
                                 f"{have[name].lexical}, the embedded store has {info.lexical} (an older "
                                 "Milvus collection has none); drop it in Milvus and migrate again")


def migrate_collection(source: Indexer, target: MilvusStore, name: str, checkpoints: Path,
                       batch: int = 500, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Copy one collection, resuming after its checkpoint; returns {"copied", "resumed_from"}."""
    _ensure_target(source, target, name)
    info = source.get_collection(name)
    store = source.store
    checkpoints.mkdir(parents=True, exist_ok=True)
    path = _checkpoint_path(checkpoints, name)
    start = _read_checkpoint(path)
    pending = [(seq, doc_id, meta) for seq, doc_id, meta in store.live_documents(name) if seq > start]
    copied = 0
    for i in range(0, len(pending), batch):
        chunk = pending[i:i + batch]
        seqs = [seq for seq, _, _ in chunk]
        texts = store.texts(seqs)
        vectors = {}
        for spec in info.variants:
            got, vecs = store.load_vectors(name, spec.name, spec.dim, seqs)  # (n,), (n, dim)
            if len(got) != len(seqs):
                raise FailedPrecondition(f"variants.{spec.name}", f"{len(seqs) - len(got)} documents of {name!r} "
                                         "have no vector for this variant (backfill it first)")
            vectors[spec.name] = vecs
        docs = [Document(doc_id, texts[seq], meta) for seq, doc_id, meta in chunk]
        target.upsert(name, docs, vectors)
        copied += len(docs)
        _write_checkpoint(path, name, seqs[-1], copied)
        if progress:
            progress(len(docs))
    return {"copied": copied, "resumed_from_seq": start}


def verify_collection(source: Indexer, target: MilvusStore, name: str, sample: int = SAMPLE,
                      seed: int = 0) -> dict[str, Any]:
    """Count on both sides and a sampled self-search in Milvus."""
    info = source.get_collection(name)
    store = source.store
    problems = []
    ours = store.count_documents(name)
    theirs = target.get_collection(name).documents
    if ours != theirs:
        problems.append(f"{name}: {ours} documents embedded, {theirs} in Milvus")
    live = [(seq, doc_id) for seq, doc_id, _ in store.live_documents(name)]
    picked = sorted(random.Random(seed).sample(live, min(sample, len(live))))  # seq order, as load_vectors
    for spec in info.variants:
        _, vecs = store.load_vectors(name, spec.name, spec.dim, [seq for seq, _ in picked])
        if not len(picked):
            continue
        hits = target.search(name, SearchRequest(variant=spec.name, k=10, include_text=False,
                                                 params={"exact": True}), vecs)
        for (seq, doc_id), found in zip(picked, hits):
            top = {h.id: h.score for h in found}
            if doc_id not in top or top[doc_id] < 0.999:
                problems.append(f"{name}/{spec.name}: {doc_id!r} is not found by its own vector in Milvus")
    problems += _lexical_problems(source, target, name, [doc_id for _, doc_id in picked[:LEXICAL_SAMPLE]])
    return {"documents": ours, "milvus_documents": theirs, "sampled": len(picked), "problems": problems}


def _lexical_problems(source: Indexer, target: MilvusStore, name: str, ids: list[str]) -> list[str]:
    """Sampled documents' texts as lexical queries: the same BM25 scores on both sides
    (scores, not ids: the stores order equal scores differently, docs/SCALE_OUT.md)."""
    docs = source.get(name, ids)
    if not docs:
        return []
    request = SearchRequest(mode="lexical", k=10, include_text=False)
    queries = [d.text[:LEXICAL_QUERY_CHARS] for d in docs]
    try:
        ours = source.search(name, request, texts=queries)
    except Unavailable:  # the embedded lexical index is still being backfilled
        return []
    theirs = target.search(name, request, texts=queries)
    return [f"{name}: lexical query of {d.id!r}: BM25 scores {[round(h.score, 6) for h in b]} in Milvus, "
            f"{[round(h.score, 6) for h in a]} embedded"
            for d, a, b in zip(docs, ours, theirs)
            if len(a) != len(b) or any(abs(x.score - y.score) > 1e-6 for x, y in zip(a, b))]


def migrate(source: Indexer, target: MilvusStore, checkpoints: Path, collections: list[str] | None = None,
            batch: int = 500, sample: int = SAMPLE,
            progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Migrate (and verify) the named collections, or all; report per collection."""
    names = [c.name for c in source.list_collections()]
    for wanted in collections or []:
        if wanted not in names:
            raise NotFound("collection", f"the embedded store has no collection {wanted!r} "
                           f"(have: {', '.join(names) or 'none'})")
    report: dict[str, Any] = {"collections": {}, "ok": True}
    for name in collections or names:
        entry = migrate_collection(source, target, name, checkpoints, batch, progress)
        entry.update(verify_collection(source, target, name, sample))
        report["collections"][name] = entry
        report["ok"] = report["ok"] and not entry["problems"]
    return report
