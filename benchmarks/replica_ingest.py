"""Ingest throughput with 1 and 2 stateless replicas over one Milvus, side by side
in one run: `ranksearch serve` processes (store.kind: milvus) on one local
milvus-lite server, fed by the spreading importer of `ranksearch import --server A
--server B` (client/spread.py). Each replica encodes its share of the batches.

Encoding dominates an import (the default encoder: ~70 documents/s on one core), so
two replicas help as far as there are idle cores for the second encoder: each
replica encodes with one torch thread (encoder_threads: 1), and milvus-lite and the
client need CPU too. On the 2-core machine this runs on, expect well under 2x.

    .venv/bin/python benchmarks/replica_ingest.py --docs 600 --model default
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from pathlib import Path

from ranksearch.client import Document
from ranksearch.client.spread import upsert_spread
from ranksearch.indexer.milvus_testing import MilvusLite
from ranksearch.service.testing import TINY_SENTENCES, ServeProcess, build_tiny_model


def model_folder(kind: str, tmp: Path) -> Path:
    if kind == "tiny":
        return build_tiny_model(tmp / "tiny")
    from ranksearch.encoder.default_model import ensure_default_model

    cache = Path(os.environ.get("RANKSEARCH_CACHE", Path.home() / ".cache" / "ranksearch"))
    return ensure_default_model(cache / "models" / "default-all-MiniLM-L6-v2")


def documents(n: int) -> list[Document]:
    texts = [f"{a}, then {b}" for a, b in itertools.permutations(TINY_SENTENCES, 2)]
    return [Document(f"d{i}", f"{texts[i % len(texts)]} (#{i})", {"n": str(i)}) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--model", choices=["default", "tiny"], default="default")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    docs = documents(args.docs)
    results = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = model_folder(args.model, tmp)
        with MilvusLite(tmp / "milvus") as milvus:
            store = {"kind": "milvus", "uri": milvus.uri, "collection_prefix": "ingest_", "timeout_s": 120}
            replicas = [ServeProcess(tmp / f"r{i}", model, tmp / f"r{i}.log", store=store).start()
                        for i in range(2)]
            try:
                for n in (1, 2):
                    clients = [r.client(timeout=600) for r in replicas[:n]]
                    collection = f"ingest{n}"
                    clients[0].create_collection(collection)
                    clients[0].upsert(collection, docs[:8])  # warm every path once
                    for c in clients:
                        c.search("warm up", collection=collection, k=1)
                    started = time.perf_counter()
                    acked = upsert_spread(clients, collection, docs, batch_size=args.batch, timeout=600)
                    seconds = time.perf_counter() - started
                    results[f"{n}_replica"] = {"docs": acked, "seconds": round(seconds, 2),
                                               "docs_per_s": round(acked / seconds, 1)}
                    print(n, "replica(s):", results[f"{n}_replica"], flush=True)
                    for c in clients:
                        c.close()
            finally:
                for r in replicas:
                    r.stop()
    ratio = results["2_replica"]["docs_per_s"] / results["1_replica"]["docs_per_s"]
    report = {"model": args.model, "batch": args.batch, "results": results,
              "two_over_one": round(ratio, 2), "cpus": os.cpu_count(),
              "note": "one milvus-lite server; shared 2-core machine"}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
