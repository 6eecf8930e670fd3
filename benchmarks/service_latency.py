"""Search latency and throughput of the gRPC service on the built-in corpus.

Starts two `ranksearch serve` processes -- micro-batching on and off -- on the data
dir and on a copy of it (the first start of an empty data dir indexes the built-in
stdlib corpus; later starts take seconds), or drives an already running server
(--server; then only as configured). For 1, 8 and 32 concurrent clients (one channel
each; the clients run in a child process, benchmarks/load_gen.py, asyncio + grpc.aio,
whose CPU share is reported, as is the server's CPU per request) it prints p50/p95/p99
latency and QPS for nearest (and, with --modes, farthest) search, and the
in-process cost of the same searches through SearchCore directly (no gRPC, on a
second copy). The cells are interleaved (on, off, in-process for each setting) so
that a change in machine load hits all three alike.

Precision is a second axis (--precisions fp32,bf16): each server also creates a
collection ``<collection>-bf16`` whose one variant encodes in bf16 and holds the
first --bf16-docs documents of the corpus (a search's cost is its query encoding; the
flat index search is ~0.1 ms either way), searched in the same interleaved cells.

    python benchmarks/service_latency.py                 # ./data, port 50071
    python benchmarks/service_latency.py --server 127.0.0.1:50051
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from ranksearch.client import SearchClient  # noqa: E402

CONCURRENCY = (1, 8, 32)
MODES = ("nearest", "farthest")


def load_queries(n: int) -> list[str]:
    from ranksearch.encoder.corpus import load_beir, resolve_corpus

    beir = load_beir(resolve_corpus("stdlib"), split="test")
    return [beir.queries[q] for q in sorted(beir.queries)][:n]


def percentiles(ms: list[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(np.array(ms), [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(address: str, queries: list[str], clients: int, mode: str, requests: int,
          collection: str, k: int, server_pid: int | None = None) -> dict:
    """`clients` single-query clients (one channel each, closed loop) share `requests`
    searches. The clients run in a child process (benchmarks/load_gen.py, asyncio +
    grpc.aio): cheap, and its CPU is measured (gen_cpu_share: the share of all cores it
    used during the cell); the server's CPU per request is measured when its pid is given."""
    args = {"address": address, "collection": collection, "queries": queries, "clients": clients,
            "requests": requests, "mode": mode, "k": k}
    server0 = proc_cpu_s(server_pid) if server_pid else None
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("load_gen.py")), json.dumps(args)],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out.splitlines()[-1])
    if r["errors"]:
        raise SystemExit(f"{len(r['errors'])} searches failed: {sorted(set(r['errors']))}")
    row = {"clients": clients, "mode": mode, "requests": r["requests"], "qps": r["qps"],
           **percentiles(r["latencies_ms"]),
           "gen_cpu_share": r["cpu_s"] / (r["wall_s"] * (os.cpu_count() or 1)),
           "gen_cpu_ms_per_request": 1000 * r["cpu_s"] / r["requests"],
           "load_average": os.getloadavg()[0]}
    if server_pid:  # includes the generator's warm-up calls: one per client
        row["server_cpu_ms_per_request"] = 1000 * (proc_cpu_s(server_pid) - server0) / (r["requests"] + clients)
    return row


def fill(address: str, collections: list[str], n: int) -> None:
    """Upsert the first n corpus documents into each extra (non-fp32) collection."""
    from ranksearch.client import Document
    from ranksearch.encoder.corpus import document_text, load_beir, resolve_corpus

    beir = load_beir(resolve_corpus("stdlib"), split="test")
    docs = [Document(d, document_text(beir.corpus[d])) for d in sorted(beir.corpus)[:n]]
    with SearchClient(address, timeout=600) as c:
        for name in collections:
            for i in range(0, len(docs), 50):
                c.upsert(name, docs[i:i + 50])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_corpus(n: int) -> Path:
    """The first n documents of the built-in corpus as a BEIR folder (first start)."""
    from ranksearch.encoder.corpus import resolve_corpus, write_beir

    lines = (resolve_corpus("stdlib") / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    out = Path(tempfile.mkdtemp(prefix="service-latency-corpus-"))
    write_beir(out, [json.loads(line) for line in lines[:n]], [], {})
    return out


def start_server(data_dir: Path, batching: bool, threads: int,
                 extra: list[dict] = (), bootstrap: Path | None = None,
                 extra_config: dict | None = None,
                 max_wait_ms: float = 0.0) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    cfg = Path(tempfile.mkdtemp()) / "bench.yaml"
    first = {"bootstrap": {"corpus": str(bootstrap)}} if bootstrap else {}
    cfg.write_text(json.dumps({**first, "metrics": {"port": None}, "threads": threads,
                               "limits": {"max_concurrent_requests": 256},
                               "collections": list(extra),
                               "batching": {"enabled": batching, "max_wait_ms": max_wait_ms},
                               "logging": {"level": "WARNING"},
                               **(extra_config or {})}))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ranksearch.cli", "serve", "--config", str(cfg),
                             "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}"])
    address = f"127.0.0.1:{port}"
    with SearchClient(address) as c:
        while True:  # first start: minutes; a server that cannot start exits non-zero
            if proc.poll() is not None:
                raise SystemExit(f"server on {data_dir} exited with {proc.returncode} before serving")
            try:
                if c.health(timeout=2) == "SERVING":
                    break
            except Exception:  # not listening yet
                pass
            time.sleep(0.5)
    return proc, address, time.perf_counter() - t0


class InProcess:
    """The same searches through SearchCore directly (one caller, batching off)."""

    def __init__(self, data_dir: Path, collection: str):
        import torch

        from ranksearch.indexer import Indexer
        from ranksearch.service.config import ServiceConfig
        from ranksearch.service.core import SearchCore

        cfg = ServiceConfig(data_dir=str(data_dir))
        torch.set_num_threads(cfg.torch_threads)
        self.indexer = Indexer(data_dir / "index", cfg.indexer_config())
        self.indexer.open()
        self.core = SearchCore(self.indexer, data_dir, limits=cfg.limits, default_collection=collection)
        self.core.set_batching(False)
        self.core.warm_up()
        self.collection = collection

    def run(self, queries: list[str], mode: str, requests: int, k: int) -> dict:
        from ranksearch.indexer import SearchRequest

        _, batcher = self.core.encoder(self.core.collection(self.collection).variants[0].encoder)
        self.core.search(self.collection, [queries[0]], SearchRequest(k=k, mode=mode, include_text=False))
        ms, encode_ms = [], []
        for i in range(requests):
            q = queries[i % len(queries)]
            t0 = time.perf_counter()
            self.core.search(self.collection, [q], SearchRequest(k=k, mode=mode, include_text=False))
            ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            batcher.encode([q], role="query")  # the encoder's share of the same query
            encode_ms.append((time.perf_counter() - t0) * 1000)
        return {"clients": 1, "mode": mode, "requests": requests, "qps": 1000 / np.mean(ms),
                **percentiles(ms), "encode_p50_ms": float(np.median(encode_ms))}

    def close(self) -> None:
        self.core.close()
        self.indexer.close()


def table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'clients':>7} {'mode':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'QPS':>8}"
          f" {'srv cpu ms/req':>14} {'gen cpu ms/req':>14} {'gen share':>9} {'load':>5}")
    for r in rows:
        extra = ""
        if "gen_cpu_share" in r:
            srv = r.get("server_cpu_ms_per_request")
            extra = (f" {srv if srv is not None else float('nan'):>14.1f} {r['gen_cpu_ms_per_request']:>14.2f}"
                     f" {100 * r['gen_cpu_share']:>8.1f}% {r['load_average']:>5.1f}")
        print(f"{r['clients']:>7} {r['mode']:>9} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} "
              f"{r['p99_ms']:>8.1f} {r['qps']:>8.1f}{extra}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", help="drive this running server instead of starting one")
    p.add_argument("--data-dir", type=Path, default=Path("./data"))
    p.add_argument("--collection", default="stdlib")
    p.add_argument("--requests", type=int, default=200, help="searches per (clients, mode) cell")
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=40, help="server gRPC threads")
    p.add_argument("--max-wait-ms", type=float, default=0.0,
                   help="batching.max_wait_ms of the batching-on server")
    p.add_argument("--encoder-threads", default="auto,auto", metavar="ON,OFF",
                   help="config encoder_threads (auto, the default, or an integer) of the "
                        "batching-on and the batching-off server")
    p.add_argument("--out", type=Path, help="also write the results as JSON")
    p.add_argument("--precisions", default="fp32,bf16", help="comma list of fp32, bf16, int8")
    p.add_argument("--modes", default="nearest", help="comma list of nearest, farthest")
    p.add_argument("--bf16-docs", type=int, default=300, help="documents in each non-fp32 collection")
    p.add_argument("--corpus-docs", type=int, default=0,
                   help="first start of an empty data dir: index only this many documents (0: all)")
    args = p.parse_args(argv)
    precisions = args.precisions.split(",")
    modes = args.modes.split(",")

    queries = load_queries(args.queries)
    print(f"# {len(queries)} queries from the built-in corpus, k={args.k}, {args.requests} "
          f"searches per cell, CPU cores visible: {os.cpu_count()}")
    results: dict = {"config": vars(args) | {"data_dir": str(args.data_dir), "out": str(args.out)}}
    if args.server:
        rows = [drive(args.server, queries, c, m, args.requests, args.collection, args.k)
                for m in MODES for c in CONCURRENCY]
        table(f"server {args.server} (as configured)", rows)
        results["server"] = rows
    else:
        import shutil

        copies = Path(tempfile.mkdtemp(prefix="service-latency-"))
        servers = {}
        try:
            if not (args.data_dir / "service" / "bootstrap.done").exists():
                corpus = small_corpus(args.corpus_docs) if args.corpus_docs else None
                proc, _, start_s = start_server(args.data_dir, True, args.threads, bootstrap=corpus)
                print(f"# first start (indexing {args.corpus_docs or 'all'} documents of the built-in "
                      f"corpus) took {start_s:.1f}s")
                proc.terminate()
                proc.wait(timeout=120)
            for name in ("off", "local"):  # copies of a closed data dir
                shutil.copytree(args.data_dir, copies / name, ignore=shutil.ignore_patterns("LOCK"))
            collection_of = {p: args.collection if p == "fp32" else f"{args.collection}-{p}"
                             for p in precisions}
            extra = [{"name": collection_of[p], "variants": [{"name": "default", "precision": p}]}
                     for p in precisions if p != "fp32"]
            enc_threads = dict(zip((True, False), (x if x == "auto" else int(x)
                                                   for x in args.encoder_threads.split(","))))
            for batching, data_dir in ((True, args.data_dir), (False, copies / "off")):
                proc, address, start_s = start_server(data_dir, batching, args.threads, extra,
                                                      extra_config={"encoder_threads": enc_threads[batching]},
                                                      max_wait_ms=args.max_wait_ms if batching else 0.0)
                servers[batching] = (proc, address)
                print(f"# server ready in {start_s:.1f}s (batching {'on' if batching else 'off'}, "
                      f"encoder_threads {enc_threads[batching]})")
                fill(address, [c["name"] for c in extra], args.bf16_docs)
            for batching, p in ((b, p) for p in precisions for b in (True, False)):
                # untimed warm-up of every (server, collection): the first searches of a
                # process build kernels for new shapes, and would land on whichever cell
                # happens to run first
                drive(servers[batching][1], queries, 8, modes[0], 64, collection_of[p], args.k)
            local = InProcess(copies / "local", args.collection)
            rows = {(b, p): [] for b in (True, False) for p in precisions}
            results["in_process"] = []
            for mode in modes:
                for clients in CONCURRENCY:
                    for p in precisions:
                        for batching in (True, False):
                            proc, address = servers[batching]
                            rows[(batching, p)].append(drive(address, queries, clients, mode, args.requests,
                                                             collection_of[p], args.k, proc.pid))
                    if clients == 1:
                        results["in_process"].append(local.run(queries, mode, args.requests, args.k))
            local.close()
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=120)
            shutil.rmtree(copies, ignore_errors=True)
        results["cells"] = [{"batching": b, "precision": p, "rows": r} for (b, p), r in rows.items()]
        for (batching, p), r in rows.items():
            table(f"gRPC service, {p}, micro-batching {'ON' if batching else 'OFF'}", r)
        table("in process (SearchCore directly, no gRPC, one caller, fp32)", results["in_process"])
        for r in results["in_process"]:
            print(f"  {r['mode']}: encoder alone p50 {r['encode_p50_ms']:.1f} ms")
        for p in precisions:
            on = {(r["clients"], r["mode"]): r for r in rows[(True, p)]}
            off = {(r["clients"], r["mode"]): r for r in rows[(False, p)]}
            print(f"\n{p}: QPS ratio batching on / off:  " + "  ".join(
                f"{m} c={c}: {on[(c, m)]['qps'] / off[(c, m)]['qps']:.2f}x" for m in modes for c in CONCURRENCY))
        base = {(r["clients"], r["mode"]): r for r in rows[(False, "fp32")]}
        for p in precisions:
            on = {(r["clients"], r["mode"]): r for r in rows[(True, p)]}
            print(f"{p} batching on vs fp32 batching off (one forward per request), QPS:  " + "  ".join(
                f"{m} c={c}: {on[(c, m)]['qps'] / base[(c, m)]['qps']:.2f}x" for m in modes for c in CONCURRENCY))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
