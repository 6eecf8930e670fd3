"""Lexical and hybrid search benchmark: latency next to dense in one run, and what the
lexical index costs at write time.

Part 1 (index path, --n documents, default 100k): generated text (Zipf-distributed
words of a synthetic 20k-word vocabulary, 20..80 words per document) with random unit
vectors of width 384 (no encoding: the index path is what is measured), one flat
variant. The same documents are upserted (batches of 512) into two data dirs:
- with the lexical index (the product as shipped);
- without it: the benchmark replaces the lexical write path (analysis and postings)
  by a no-op, so the difference is exactly what the lexical index adds.
Reported: upsert throughput of each and the ratio, SQLite file size of each, and
search latency p50/p95 at k=10, one query per call, for dense (nearest), lexical and
hybrid (RRF, 100 candidates per retriever), all on the same data dir. Queries: 2..4
words drawn from the same distribution without its 20 most common words.

Part 2 (encoding included, --encode-n documents, default 2000): the real encoder
(all-MiniLM-L6-v2 converted at full rank; --model) encodes the texts once (batches of
64); the upsert time of each configuration is added to that encode time, so the
reported end-to-end throughput ratio is what a client loading documents sees.

The machine is shared: compare the ratios measured side by side, not absolute times.

    .venv/bin/python benchmarks/hybrid_search.py [--n 100000] [--encode-n 2000] [--queries 300]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from ranksearch.indexer import (Document, HybridParams, Indexer, IndexerConfig, IndexSpec, LexicalConfig,
                                SearchRequest, VariantSpec)
from ranksearch.indexer import indexer as indexer_module
from ranksearch.indexer import lexical, store
from ranksearch.indexer.store import DB_NAME

DIM = 384
K = 10
BATCH = 512
VOCAB = 20_000
_SYLLABLES = [c + v for c in "bdgkmnprstz" for v in "aeiou"]


def vocabulary(rng: np.random.Generator) -> list[str]:
    words: set[str] = set()
    while len(words) < VOCAB:
        words.add("".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 5)))))
    return sorted(words)


def zipf_p(n: int, s: float = 1.07) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** s
    return p / p.sum()


def make_texts(rng: np.random.Generator, words: list[str], n: int) -> list[str]:
    p = zipf_p(len(words))
    lengths = rng.integers(20, 81, size=n)
    flat = rng.choice(len(words), size=int(lengths.sum()), p=p)
    out, pos = [], 0
    for length in lengths.tolist():
        out.append(" ".join(words[i] for i in flat[pos:pos + length]))
        pos += length
    return out


def make_queries(rng: np.random.Generator, words: list[str], n: int) -> list[str]:
    p = zipf_p(len(words))[20:]
    p /= p.sum()
    return [" ".join(words[20 + i] for i in rng.choice(len(p), size=int(rng.integers(2, 5)), p=p))
            for _ in range(n)]


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)  # (n, DIM)


@contextlib.contextmanager
def lexical_disabled():
    """The lexical write path as a no-op (documents still get their lex_docs-free rows)."""
    empty = lexical.DocTerms({}, 0, 0)
    saved = (indexer_module.lexical.analyse, store.lexical.insert_docs)
    indexer_module.lexical.analyse = lambda cfg, text, meta: empty
    store.lexical.insert_docs = lambda conn, cid, docs: None
    try:
        yield
    finally:
        indexer_module.lexical.analyse, store.lexical.insert_docs = saved


def upsert_all(ix: Indexer, texts: list[str], vecs: np.ndarray) -> float:
    """Seconds to upsert everything in batches of BATCH."""
    t0 = time.perf_counter()
    for s in range(0, len(texts), BATCH):
        docs = [Document(f"d{i}", texts[i], {"g": str(i % 10)}) for i in range(s, min(s + BATCH, len(texts)))]
        ix.upsert("c", docs, {"v": vecs[s:s + BATCH]})
    return time.perf_counter() - t0


def open_collection(path: Path) -> Indexer:
    ix = Indexer(path, IndexerConfig(snapshot_interval_s=0))
    ix.open()
    ix.create_collection("c", [VariantSpec("v", DIM, IndexSpec("flat"))],
                         lexical_config=LexicalConfig(analyzer="standard"))
    return ix


def db_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob(DB_NAME + "*"))


def percentiles(ms: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(np.array(ms), [50, 95])
    return {"p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3)}


def latency(ix: Indexer, request: SearchRequest, vecs: np.ndarray, queries: list[str]) -> dict[str, float]:
    ix.search("c", request, vecs[:1], queries[:1])  # warm
    ms = []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        ix.search("c", request, vecs[i:i + 1], [q])
        ms.append((time.perf_counter() - t0) * 1000)
    return percentiles(ms)


def index_path(n: int, n_queries: int, tmp: Path) -> dict:
    rng = np.random.default_rng(0)
    words = vocabulary(rng)
    texts = make_texts(rng, words, n)
    vecs = unit_rows(rng, n)
    queries = make_queries(rng, words, n_queries)
    q_vecs = unit_rows(rng, n_queries)
    out: dict = {"documents": n, "mean_words": float(np.mean([len(t.split()) for t in texts]))}
    with lexical_disabled():
        ix = open_collection(tmp / "without")
        t_without = upsert_all(ix, texts, vecs)
        ix.close()
    ix = open_collection(tmp / "with")
    t_with = upsert_all(ix, texts, vecs)
    out["upsert_docs_per_s"] = {"without_lexical": round(n / t_without, 1), "with_lexical": round(n / t_with, 1),
                                "ratio_with_over_without": round(t_without / t_with, 3)}
    ix.store._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out["sqlite_bytes"] = {"without_lexical": db_bytes(tmp / "without"), "with_lexical": db_bytes(tmp / "with")}
    hybrid = HybridParams(fusion="rrf", dense_candidates=100, lexical_candidates=100)
    out["search_k10"] = {
        "dense": latency(ix, SearchRequest(mode="nearest", k=K, include_text=False), q_vecs, queries),
        "lexical": latency(ix, SearchRequest(mode="lexical", k=K, include_text=False), q_vecs, queries),
        "hybrid_rrf": latency(ix, SearchRequest(mode="hybrid", k=K, include_text=False, hybrid=hybrid),
                              q_vecs, queries),
    }
    ix.close()
    return out


def encoded_path(n: int, model: Path, tmp: Path) -> dict:
    from ranksearch.encoder import load_encoder

    rng = np.random.default_rng(1)
    # English-like text for a real encoder: reuse the synthetic words (the encoder's
    # cost depends on token count, the lexical index's on term count)
    texts = make_texts(rng, vocabulary(rng), n)
    embedder = load_encoder(model)
    embedder.encode(texts[:8], role="document")  # warm
    t0 = time.perf_counter()
    vecs = np.concatenate([embedder.encode(texts[s:s + 64], role="document") for s in range(0, n, 64)])  # (n, dim)
    t_encode = time.perf_counter() - t0
    dim = vecs.shape[1]

    def run(path: Path) -> float:
        ix = Indexer(path, IndexerConfig(snapshot_interval_s=0))
        ix.open()
        ix.create_collection("c", [VariantSpec("v", dim, IndexSpec("flat"))],
                             lexical_config=LexicalConfig(analyzer="standard"))
        seconds = upsert_all(ix, texts, vecs)
        ix.close()
        return seconds

    with lexical_disabled():
        t_without = run(tmp / "enc-without")
    t_with = run(tmp / "enc-with")
    return {"documents": n, "model": model.name, "encode_s": round(t_encode, 2),
            "upsert_s": {"without_lexical": round(t_without, 2), "with_lexical": round(t_with, 2)},
            "end_to_end_docs_per_s": {"without_lexical": round(n / (t_encode + t_without), 1),
                                      "with_lexical": round(n / (t_encode + t_with), 1),
                                      "ratio_with_over_without": round((t_encode + t_without)
                                                                       / (t_encode + t_with), 3)}}


def default_model() -> Path:
    cached = Path.home() / ".cache" / "ranksearch" / "models" / "default-all-MiniLM-L6-v2"
    if cached.is_dir():
        return cached
    from ranksearch.encoder.default_model import ensure_default_model
    return ensure_default_model(cached)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--encode-n", type=int, default=2000)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here too")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "note": "shared machine: compare ratios measured in this run"}}
    with tempfile.TemporaryDirectory() as tmp:
        result["index_path"] = index_path(args.n, args.queries, Path(tmp))
        print(json.dumps(result["index_path"], indent=2), flush=True)
        if args.encode_n:
            result["with_encoding"] = encoded_path(args.encode_n, args.model or default_model(), Path(tmp))
            print(json.dumps(result["with_encoding"], indent=2), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
