"""End-to-end latency through a running ranksearch service (`--server ADDRESS`):
one Search RPC per query, so the figure includes gRPC, validation, query encoding and
the index search as an application would see them."""
from __future__ import annotations

from collections.abc import Sequence

from .latency import percentiles, time_calls


def measure_service(address: str, queries: Sequence[str], variants: Sequence[str],
                    collection: str = "") -> dict:
    """Per eval variant name: latency percentiles when the server's collection has a
    variant of that name, else the server's error. Also ``__default__``: the
    collection's default variant. ``address`` may be ``host:port/collection``."""
    from ranksearch.client.client import RpcFailed, SearchClient

    if "/" in address and not collection:
        address, collection = address.split("/", 1)
    out: dict[str, dict] = {}
    with SearchClient(address, retries=1) as client:
        for name in ["", *variants]:
            key = name or "__default__"
            try:
                client.search(queries[0], collection=collection, k=10, variant=name)
            except RpcFailed as exc:
                out[key] = {"error": f"{exc.code.name}: {exc.message}"}
                continue
            ms = time_calls(lambda q: client.search(q, collection=collection, k=10, variant=name),
                            list(queries))
            out[key] = {**percentiles(ms), "address": address, "collection": collection}
    return out
