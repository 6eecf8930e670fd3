"""Indexer search benchmark: the ranksearch indexer against bare FAISS, same run.

For N vectors of width 384 (default 100k; --million for 1M if memory allows), per
index type (flat, hnsw, ivf):
- build time: Indexer.upsert in batches (SQLite commit with fsync + FAISS add, plus
  IVF training) vs building the bare FAISS index from the same array;
- memory: the indexer's index bytes (stats) and the process RSS growth during the
  build (includes SQLite page cache; in-process, so only indicative);
- search latency p50/p99 at batch 1 and batch 64, k=10: indexer with
  include_text=False (the lean path), indexer with texts (one batched SQLite fetch),
  and the bare FAISS index with the same knobs (IndexFlatIP / IndexHNSWFlat /
  IndexIVFFlat, efSearch / nprobe passed per call);
- recall@10 vs exact numpy for nearest and farthest (bare FAISS farthest = its own
  search with -q, which shows why the indexer answers farthest exactly);
- the overhead ratio indexer / bare at p50.

Data: unit vectors around 200 random centres (noise 1.0), a stand-in for sentence
embeddings; queries drawn the same way. FAISS threads: --threads (default 1), set
for both sides. Timings on a shared machine vary run to run; compare ratios.

    .venv/bin/python benchmarks/index_search.py [--n 100000] [--million] [--kinds flat,hnsw,ivf]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from ranksearch.indexer import Document, Indexer, IndexerConfig, IndexSpec, VariantSpec

DIM = 384
K = 10
SPECS = {
    "flat": IndexSpec("flat"),
    "hnsw": IndexSpec("hnsw", {"M": 32, "efConstruction": 40, "efSearch": 64}),
    # nlist = 4*sqrt(N), set in main(); trained once 40*nlist vectors are in
    "ivf": IndexSpec("ivf", {"nprobe": 32}),
}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def centres(rng: np.random.Generator, count: int, d: int) -> np.ndarray:
    c = rng.normal(size=(count, d)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, n: int, c: np.ndarray, noise: float = 1.0) -> np.ndarray:
    """(n, d) unit rows around the centres c (centres, d)."""
    d = c.shape[1]
    out = np.empty((n, d), np.float32)
    for start in range(0, n, 50_000):  # (chunk, d): bounded temporaries at 1M
        m = min(50_000, n - start)
        x = c[rng.integers(0, len(c), m)] + noise * rng.normal(size=(m, d)).astype(np.float32) / np.sqrt(d)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def exact_topk(q: np.ndarray, x: np.ndarray, k: int, farthest: bool) -> np.ndarray:
    sims = q @ x.T  # (q, n)
    sims = -sims if farthest else sims
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    return top


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / truth.shape[1] for f, t in zip(found, truth)]))


def timed(fns: dict, batches: list[np.ndarray], rounds: int = 4) -> dict[str, tuple[float, float]]:
    """p50, p99 in ms per function, one call per batch. Each function runs over all
    batches in a block (after a warm-up call), blocks alternate in order over
    `rounds`, so drift from other load on the shared machine hits all of them alike
    while each block runs with its own index warm in cache."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            fn = fns[name]
            fn(batches[0])
            for b in batches:
                t = time.perf_counter()
                fn(b)
                times[name].append((time.perf_counter() - t) * 1000)
    return {name: (float(np.percentile(t, 50)), float(np.percentile(t, 99))) for name, t in times.items()}


def bare_index(kind: str, x: np.ndarray, nlist: int) -> tuple[faiss.Index, faiss.SearchParameters | None]:
    if kind == "flat":
        index, params = faiss.IndexFlatIP(DIM), None
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(DIM, SPECS["hnsw"].params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = SPECS["hnsw"].params["efConstruction"]
        params = faiss.SearchParametersHNSW(efSearch=SPECS["hnsw"].params["efSearch"])
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(x)
        params = faiss.SearchParametersIVF(nprobe=SPECS["ivf"].params["nprobe"])
    index.add(x)
    return index, params


def run_kind(kind: str, x: np.ndarray, q1: list[np.ndarray], q64: list[np.ndarray], truth: dict, threads: int, root: Path) -> dict:
    n = len(x)
    row: dict = {"kind": kind}
    data_dir = root / kind
    rss0 = rss_mb()
    t = time.perf_counter()
    ix = Indexer(data_dir, IndexerConfig(snapshot_interval_s=0, faiss_threads=threads, max_batch=10_000))
    ix.open()
    ix.create_collection("c", [VariantSpec("v", DIM, SPECS[kind])])
    for start in range(0, n, 5000):
        docs = [Document(f"doc{i}", f"text of document {i}", {"part": str(i % 10)}) for i in range(start, min(n, start + 5000))]
        ix.upsert("c", docs, {"v": x[start : start + len(docs)]})
    ix.wait_for_maintenance()  # background training / one-pass graph rebuilds count as build time
    row["build_s"] = time.perf_counter() - t
    stats = ix.stats()["collections"]["c"]["variants"]["v"]
    row["index_type"] = stats["index_type"]
    row["index_mb"] = stats["size_bytes"] / 2**20
    row["rss_growth_mb"] = rss_mb() - rss0
    nlist = SPECS["ivf"].params["nlist"]

    t = time.perf_counter()
    bare, params = bare_index(kind, x, nlist)
    row["bare_build_s"] = time.perf_counter() - t

    search = lambda b, text=False, mode="nearest": ix.search("c", None, b, K, mode=mode, include_text=text)
    row.update(timed({
        "ix_b1": search,
        "ix_text_b1": lambda b: search(b, True),
        "ix_far_b1": lambda b: search(b, mode="farthest"),
        "bare_b1": lambda b: bare.search(b, K, params=params),
    }, q1))
    row.update(timed({
        "ix_b64": search,
        "bare_b64": lambda b: bare.search(b, K, params=params),
    }, q64))

    qs = np.vstack(q1)
    as_rows = lambda hits: [[int(h.id[3:]) for h in r] for r in hits]
    row["ix_recall_near"] = recall(as_rows(ix.search("c", None, qs, K, include_text=False)), truth["near"])
    row["ix_recall_far"] = recall(as_rows(ix.search("c", None, qs, K, mode="farthest", include_text=False)), truth["far"])
    row["bare_recall_near"] = recall(bare.search(qs, K, params=params)[1].tolist(), truth["near"])
    row["bare_recall_far"] = recall(bare.search(-qs, K, params=params)[1].tolist(), truth["far"])
    if kind == "hnsw":  # the graph built in one add, as rebuild() does, vs grown batch by batch
        t = time.perf_counter()
        ix.rebuild("c")
        row["rebuild_s"] = time.perf_counter() - t
        row["ix_recall_near_rebuilt"] = recall(as_rows(ix.search("c", None, qs, K, include_text=False)), truth["near"])
    ix.close()
    del bare
    shutil.rmtree(data_dir, ignore_errors=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--million", action="store_true", help="N = 1,000,000 (needs several GB of RAM and disk)")
    ap.add_argument("--kinds", default="flat,hnsw,ivf")
    ap.add_argument("--queries", type=int, default=200, help="batch-1 queries (batch 64 uses 10 batches)")
    ap.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads (both sides)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None, help="data directory root (default: a temp dir)")
    args = ap.parse_args()
    n = 1_000_000 if args.million else args.n
    nlist = max(1, int(4 * n**0.5))
    SPECS["ivf"] = IndexSpec("ivf", {**SPECS["ivf"].params, "nlist": nlist, "train_min": min(40 * nlist, n)})
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    c = centres(rng, 200, DIM)
    x = clustered(rng, n, c)
    qs = clustered(rng, args.queries, c)
    q1 = [qs[i : i + 1] for i in range(len(qs))]
    q64 = [clustered(rng, 64, c) for _ in range(10)]
    truth = {"near": exact_topk(qs, x, K, False), "far": exact_topk(qs, x, K, True)}
    print(f"# index_search: N={n} d={DIM} k={K} faiss {faiss.__version__} threads={args.threads} "
          f"cpus={os.cpu_count()} {platform.processor() or platform.machine()} (shared machine: timings are noisy, compare ratios)")
    root = args.dir or Path(tempfile.mkdtemp(prefix="ranksearch-bench-"))
    rows = []
    try:
        for kind in args.kinds.split(","):
            row = run_kind(kind, x, q1, q64, truth, args.threads, root)
            rows.append(row)
            print(f"## {kind}: {row['index_type']}")
            print(f"  build: indexer {row['build_s']:.1f} s (SQLite+FAISS), bare FAISS {row['bare_build_s']:.1f} s")
            print(f"  memory: index {row['index_mb']:.0f} MiB (stats), RSS growth during build {row['rss_growth_mb']:.0f} MiB")
            for label, key in [("indexer b1 (no text)", "ix_b1"), ("indexer b1 (+text)", "ix_text_b1"),
                               ("indexer b1 farthest", "ix_far_b1"), ("bare FAISS b1", "bare_b1"),
                               ("indexer b64 (no text)", "ix_b64"), ("bare FAISS b64", "bare_b64")]:
                p50, p99 = row[key]
                print(f"  {label:<24} p50 {p50:8.3f} ms   p99 {p99:8.3f} ms")
            print(f"  overhead indexer/bare p50: batch 1 {row['ix_b1'][0] / row['bare_b1'][0]:.2f}x "
                  f"(+text {row['ix_text_b1'][0] / row['bare_b1'][0]:.2f}x), batch 64 {row['ix_b64'][0] / row['bare_b64'][0]:.2f}x; "
                  f"absolute p50 difference: batch 1 {(row['ix_b1'][0] - row['bare_b1'][0]) * 1000:.0f} us, "
                  f"batch 64 {(row['ix_b64'][0] - row['bare_b64'][0]) * 1000:.0f} us")
            print(f"  recall@10 nearest: indexer {row['ix_recall_near']:.3f}, bare {row['bare_recall_near']:.3f}; "
                  f"farthest: indexer {row['ix_recall_far']:.3f}, bare (-q on the same index) {row['bare_recall_far']:.3f}")
            if "rebuild_s" in row:
                print(f"  after Indexer.rebuild (graph built in one add, {row['rebuild_s']:.1f} s): "
                      f"nearest recall@10 {row['ix_recall_near_rebuilt']:.3f}")
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
