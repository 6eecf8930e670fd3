"""Lexical and hybrid search, embedded store vs Milvus store, side by side in one run,
through the storage port (precomputed vectors, no encoder), on the synthetic Zipf
corpus of benchmarks/hybrid_search.py (standard analyzer, k=10).

Per store: upsert throughput of a collection with its lexical index, then
single-threaded p50/p95 (ms) of nearest, lexical and hybrid (RRF) searches, and how
many results of each lexical query were equal between the stores (ids and BM25
scores within 1e-9). On Milvus, a lexical search reads its statistics with count(*)
queries and its postings with one query per search (docs/SCALE_OUT.md); the Milvus
leg runs against a local `milvus-lite server` (pure Python, single process): a real
Milvus has different latencies. Treat its numbers as the cost of this store's mapping
over the protocol, not as a Milvus measurement.

    .venv/bin/python benchmarks/milvus_lexical.py --docs 2000 --queries 30
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from hybrid_search import make_queries, make_texts, unit_rows, vocabulary
from store_pair import add_milvus_args, open_stores

from ranksearch.indexer import Document, LexicalConfig, VariantSpec
from ranksearch.indexer.request import SearchRequest

MODES = ("nearest", "lexical", "hybrid")


def measure(store, texts: list[str], x: np.ndarray, queries: list[str], q: np.ndarray, batch: int):
    store.create_collection("bench", [VariantSpec("v", x.shape[1])],
                            lexical_config=LexicalConfig(analyzer="standard"))
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        docs = [Document(f"d{j:07d}", texts[j], {"g": str(j % 10)}) for j in range(i, min(i + batch, len(texts)))]
        store.upsert("bench", docs, {"v": x[i:i + batch]})
    row = {"upsert_docs_per_s": round(len(texts) / (time.perf_counter() - started), 1)}
    answers = []
    for mode in MODES:
        times = []
        for text, vector in zip(queries, q):
            t0 = time.perf_counter()
            (hits,) = store.search("bench", SearchRequest(mode=mode, k=10, include_text=False), vector[None, :],
                                   texts=[text])
            times.append((time.perf_counter() - t0) * 1000)
            if mode == "lexical":
                answers.append([(h.id, h.score) for h in hits])
        p50, p95 = np.percentile(times, [50, 95])
        row[f"{mode}_p50_ms"], row[f"{mode}_p95_ms"] = round(float(p50), 1), round(float(p95), 1)
    store.delete_collection("bench")
    return row, answers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--batch", type=int, default=256)
    add_milvus_args(ap)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    words = vocabulary(rng)
    texts, queries = make_texts(rng, words, args.docs), make_queries(rng, words, args.queries)
    x = unit_rows(rng, args.docs)[:, :args.dim]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = unit_rows(rng, args.queries)[:, :args.dim]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    results, answers = {}, {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        stores, remote = open_stores(Path(tmp), stack, args.uri, timeout_s=300)
        for label, store in stores.items():
            store.open()
            results[label], answers[label] = measure(store, texts, x, queries, q, args.batch)
            print(label, results[label], flush=True)
            store.close()
    equal = sum(len(a) == len(b) and all(i == j and abs(s - t) <= 1e-9 for (i, s), (j, t) in zip(a, b))
                for a, b in zip(answers["embedded"], answers[remote]))
    emb, mil = results["embedded"], results[remote]
    ratios = {f"milvus_over_embedded_{m}_p50": round(mil[f"{m}_p50_ms"] / max(emb[f"{m}_p50_ms"], 0.01), 1)
              for m in MODES}
    ratios["lexical_queries_equal"] = f"{equal} of {len(queries)}"
    report = {"docs": args.docs, "dim": args.dim, "queries": args.queries, "results": results, "ratios": ratios,
              "python": platform.python_version(), "milvus": args.uri or "local milvus-lite",
              "note": "the milvus-lite rows are not a real Milvus; shared 2-core machine"}
    print(json.dumps(ratios, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
