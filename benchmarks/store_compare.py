"""Embedded store (SQLite + FAISS) vs Milvus store, side by side in one run, through
the storage port with precomputed vectors (no encoder: this measures the stores).

For each store and index kind: upsert throughput (documents/s, batches of --batch,
durable/acknowledged on return), then single-threaded search latency p50/p95 (ms) for
nearest and farthest, k=10. On Milvus an HNSW variant also keeps a FLAT exact copy
of its vectors (farthest stays exact): the flat-vs-hnsw upsert rows show what that
copy costs in write time; in memory it is 4 x dim bytes per document.

The Milvus leg runs against a local `milvus-lite server` process (same gRPC
protocol as Milvus). A real Milvus (standalone or cluster: separate query and data
nodes, segment sealing, its own index builds) has different latencies and
throughput: treat the Milvus numbers as the cost of the protocol and of this
store's mapping, not as a Milvus measurement.

    .venv/bin/python benchmarks/store_compare.py --docs 5000
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

from store_pair import add_milvus_args, open_stores

from ranksearch.indexer import Document, IndexSpec, VariantSpec
from ranksearch.indexer.request import SearchRequest

FLAT, HNSW = IndexSpec("flat"), IndexSpec("hnsw", {"M": 16, "efConstruction": 100})
# "flat+flat": a second FLAT vector per row, what the exact copy of an hnsw/ivf
# variant adds on Milvus; searches run on the first variant
KINDS = {"flat": [FLAT], "hnsw": [HNSW], "flat+flat": [FLAT, FLAT]}


def unit(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def measure(store, kind: str, x: np.ndarray, queries: np.ndarray, batch: int) -> dict:
    name = f"bench_{kind.replace('+', '_')}"
    specs = [VariantSpec(f"v{i}", x.shape[1], spec) for i, spec in enumerate(KINDS[kind])]
    store.create_collection(name, specs)
    started = time.perf_counter()
    for i in range(0, len(x), batch):
        docs = [Document(f"d{j}", f"document number {j}", {"g": str(j % 10)}) for j in range(i, min(i + batch, len(x)))]
        store.upsert(name, docs, {spec.name: x[i:i + batch] for spec in specs})
    upsert_s = time.perf_counter() - started
    row = {"upsert_docs_per_s": round(len(x) / upsert_s, 1)}
    for mode in ("nearest", "farthest"):
        store.search(name, SearchRequest(variant="v0", k=10, mode=mode), queries[:1])  # warm
        times = []
        for q in queries:
            t0 = time.perf_counter()
            store.search(name, SearchRequest(variant="v0", k=10, mode=mode, include_text=False), q[None, :])
            times.append((time.perf_counter() - t0) * 1000)
        p50, p95 = np.percentile(times, [50, 95])
        row[f"{mode}_p50_ms"], row[f"{mode}_p95_ms"] = round(float(p50), 2), round(float(p95), 2)
    store.delete_collection(name)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--batch", type=int, default=256)
    add_milvus_args(ap)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x, queries = unit(rng, args.docs, args.dim), unit(rng, args.queries, args.dim)
    results = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        stores, remote = open_stores(Path(tmp), stack, args.uri, timeout_s=120)
        for label, store in stores.items():
            store.open()
            for kind in KINDS:
                results[f"{label}/{kind}"] = measure(store, kind, x, queries, args.batch)
                print(label, kind, results[f"{label}/{kind}"], flush=True)
            store.close()
    emb, mil = results["embedded/flat"], results[f"{remote}/flat"]
    ratios = {"milvus_over_embedded_nearest_p50": round(mil["nearest_p50_ms"] / emb["nearest_p50_ms"], 1),
              "embedded_over_milvus_upsert": round(emb["upsert_docs_per_s"] / mil["upsert_docs_per_s"], 1),
              "milvus_upsert_time_hnsw_plus_flat_copy_over_flat": round(mil["upsert_docs_per_s"]
                                                    / results[f"{remote}/hnsw"]["upsert_docs_per_s"], 2),
              "milvus_upsert_time_second_flat_field_over_one": round(
                  mil["upsert_docs_per_s"] / results[f"{remote}/flat+flat"]["upsert_docs_per_s"], 2),
              "milvus_flat_copy_bytes_per_doc": 4 * args.dim}
    report = {"docs": args.docs, "dim": args.dim, "queries": args.queries, "batch": args.batch,
              "results": results, "ratios": ratios, "python": platform.python_version(),
              "machine": platform.machine(), "milvus": args.uri or "local milvus-lite",
              "note": "the milvus-lite rows are not a real Milvus; shared 2-core machine"}
    print(json.dumps(ratios, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
