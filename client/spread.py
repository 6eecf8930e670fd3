"""Spread an import over several replicas (``ranksearch import --server A --server
B``): each replica encodes its share. Batches go through one bounded queue that one
thread per replica drains, so a slower replica simply takes fewer batches. A batch
whose replica fails with UNAVAILABLE (stopped, killed, NOT_SERVING) goes back to the
queue for the others (upsert is idempotent by id); a batch the server rejects for
its content stops the import with that error."""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Sequence

from ranksearch.client.client import Document, RpcFailed, SearchClient

_DONE = object()


def upsert_spread(clients: Sequence[SearchClient], collection: str, documents: Iterable[Document],
                  batch_size: int = 128, timeout: float | None = None,
                  on_batch: Callable[[int], None] | None = None) -> int:
    """Upsert `documents` in batches across `clients`; returns the acknowledged count."""
    work: queue.Queue = queue.Queue(maxsize=2 * len(clients))
    lock = threading.Lock()
    state = {"acked": 0, "error": None, "alive": len(clients)}
    stop = threading.Event()

    def next_batch():
        while not stop.is_set():
            try:
                return work.get(timeout=0.2)
            except queue.Empty:
                continue
        return _DONE

    def worker(client: SearchClient) -> None:
        while True:
            batch = next_batch()
            if batch is _DONE:
                work.put(_DONE)  # for the other workers
                return
            try:
                n = client.upsert(collection, batch, timeout=timeout)
            except RpcFailed as exc:
                if exc.code.name != "UNAVAILABLE":
                    state["error"] = exc
                    stop.set()
                    return
                with lock:
                    state["alive"] -= 1
                    last = state["alive"] == 0
                if last:
                    state["error"] = exc
                    stop.set()
                else:
                    work.put(batch)  # another replica takes it
                return
            with lock:
                state["acked"] += n
            if on_batch:
                on_batch(n)

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    batch: list[Document] = []

    def put(item) -> None:
        while not stop.is_set():
            try:
                work.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    for doc in documents:
        batch.append(doc)
        if len(batch) >= batch_size:
            put(batch)
            batch = []
        if stop.is_set():
            break
    if batch:
        put(batch)
    put(_DONE)
    for t in threads:
        t.join()
    if state["error"] is not None:
        raise state["error"]
    return state["acked"]
