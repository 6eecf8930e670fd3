"""A cheap load generator for the gRPC service: one process, asyncio, grpc.aio.

``benchmarks/service_latency.py`` runs it as a child process per cell, so that the
clients cost as little CPU as possible on the cores the server also uses, and so that
their CPU share can be measured and reported (the same generator drives every arm of a
comparison). ``clients`` coroutines, each with its own channel, share ``requests``
single-query Search calls; every call is awaited before the coroutine sends the next
one (a closed loop, like a user waiting for an answer).

    python benchmarks/load_gen.py '{"address": "127.0.0.1:50071", "collection": "stdlib",
        "queries": ["open a file"], "clients": 8, "requests": 100, "mode": "nearest", "k": 10}'

prints one JSON line: requests, wall_s, qps, latencies_ms, cpu_s (this process, user +
system), and errors (status code names of failed calls; a failed call is not timed).
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import grpc

from ranksearch.client.client import _search_fields
from ranksearch.proto.v1 import search_pb2 as pb
from ranksearch.proto.v1 import search_pb2_grpc as pb_grpc


async def drive(address: str, collection: str, queries: list[str], clients: int, requests: int,
                mode: str, k: int) -> dict:
    fields = _search_fields(None, mode == "farthest", None, False)
    calls = [pb.SearchRequest(collection=collection, query=q, k=k, **fields) for q in queries]
    channels = [grpc.aio.insecure_channel(address) for _ in range(clients)]
    stubs = [pb_grpc.SearchServiceStub(c) for c in channels]
    await asyncio.gather(*(s.Search(calls[0], timeout=120) for s in stubs))  # warm the channels
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(requests))

    async def client(stub) -> None:
        for i in counter:  # shared iterator: one event loop, no races
            t0 = time.perf_counter()
            try:
                await stub.Search(calls[i % len(calls)], timeout=120)
            except grpc.aio.AioRpcError as exc:
                errors.append(exc.code().name)
                continue
            latencies.append((time.perf_counter() - t0) * 1000)

    cpu0, t0 = os.times(), time.perf_counter()
    await asyncio.gather(*(client(s) for s in stubs))
    wall, cpu1 = time.perf_counter() - t0, os.times()
    for c in channels:
        await c.close()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {"requests": len(latencies), "wall_s": wall, "qps": len(latencies) / wall,
            "latencies_ms": latencies, "cpu_s": cpu, "errors": errors}


def main() -> int:
    a = json.loads(sys.argv[1])
    result = asyncio.run(drive(a["address"], a["collection"], a["queries"], a["clients"],
                               a["requests"], a["mode"], a["k"]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
