"""Scale-out on Milvus, through real processes: replicas are stateless `ranksearch
serve` processes over one real milvus-lite server. Migration from an embedded data
dir serves the same results; replicas see each other's collections and writes; a
killed replica or a Milvus outage loses no acknowledged document and never answers
INTERNAL."""
from __future__ import annotations

import itertools
import threading
import time
import uuid

import pytest

from ranksearch.client import Document, RpcFailed
from ranksearch.indexer import Indexer
from ranksearch.indexer.migrate import migrate_collection
from ranksearch.indexer.milvus_store import MilvusStore
from ranksearch.indexer.milvus_testing import MilvusLite
from ranksearch.service.testing import TINY_SENTENCES, ServeProcess

TEXTS = [f"{a} and then {b}" for a, b in itertools.permutations(TINY_SENTENCES, 2)]


def _store(milvus, prefix):
    return {"kind": "milvus", "uri": milvus.uri, "collection_prefix": prefix, "timeout_s": 5}


def _docs(prefix: str, n: int, start: int = 0) -> list[Document]:
    return [Document(f"{prefix}{i}", TEXTS[i % len(TEXTS)] + f" #{i}", {"src": prefix})
            for i in range(start, start + n)]


def test_migrated_collection_serves_the_same_top10_in_every_mode(make_server, milvus_lite, tmp_path, capsys):
    import json

    import yaml

    from ranksearch.cli import main

    data = tmp_path / "data"
    queries = TINY_SENTENCES[:10]
    with_embedded = make_server(data_dir=data)
    client = with_embedded.client()
    client.create_collection("docs", analyzer="standard", default_mode="hybrid")
    client.upsert("docs", _docs("d", 150))
    client.delete("docs", ["d3", "d4"])

    def served(client):
        """Per query: dense top-10 ids, lexical top-10 BM25 scores (this corpus repeats
        texts: the stores order equal scores differently, so ids of a tie may swap,
        and hybrid pages with them), the default mode."""
        return {q: ([h.id for h in client.search(q, k=10, mode="nearest").hits],
                    [round(h.score, 6) for h in client.search(q, k=10, mode="lexical").hits],
                    client.search(q, k=10).mode) for q in queries}
    before = served(client)
    with_embedded.server.stop(grace=1.0)

    prefix = f"g{uuid.uuid4().hex[:8]}_"
    target = MilvusStore(milvus_lite.uri, collection_prefix=prefix, timeout_s=30)
    target.open()
    source = Indexer(data / "index")
    source.open()
    try:
        class Crash(Exception):
            pass

        def crash_after_first_batch(n):
            raise Crash  # the process dies after one acknowledged, checkpointed batch

        with pytest.raises(Crash):
            migrate_collection(source, target, "docs", data / "service", batch=40,
                               progress=crash_after_first_batch)
    finally:
        source.close()
        target.close()
    config = tmp_path / "milvus.yaml"
    config.write_text(yaml.safe_dump({"store": _store(milvus_lite, prefix)}))
    capsys.readouterr()
    rc = main(["migrate", "--to", "milvus", "--config", str(config), "--data-dir", str(data), "--batch", "40"])
    report = json.loads(capsys.readouterr().out)
    entry = report["collections"]["docs"]
    assert rc == 0 and report["ok"], report
    assert entry["resumed_from_seq"] > 0 and entry["copied"] == 148 - 40
    assert entry["documents"] == entry["milvus_documents"] == 148 and entry["sampled"] == 20

    with_milvus = make_server(data_dir=data, store=_store(milvus_lite, prefix))
    client = with_milvus.client()
    assert served(client) == before  # the lexical settings and the default mode came along


@pytest.fixture
def milvus(tmp_path):
    with MilvusLite(tmp_path / "milvus") as server:
        yield server


@pytest.fixture
def replicas(milvus, tmp_path, tiny_model):
    started = []

    def start(n: int) -> list[ServeProcess]:
        store = _store(milvus, "rs_")
        for i in range(n):
            started.append(ServeProcess(tmp_path / f"replica{i}", tiny_model, tmp_path / f"replica{i}.log",
                                        store=store).start())
        return started

    yield start
    for replica in started:
        replica.stop()


@pytest.mark.slow
def test_replicas_share_collections_and_writes_and_a_killed_one_loses_nothing(replicas):
    a, b = replicas(2)
    ca, cb = a.client(retries=0), b.client(retries=0)
    ca.create_collection("docs")
    assert cb.upsert("docs", _docs("b", 20)) == 20  # created through a, written through b
    assert ca.upsert("docs", _docs("a", 20)) == 20
    for client in (ca, cb):
        assert client.stats("docs").collections[0].documents == 40
        assert client.search(TEXTS[5] + " #5", k=1).hits[0].id in ("a5", "b5")
        assert len(client.get("docs", [f"a{i}" for i in range(20)] + [f"b{i}" for i in range(20)])) == 40

    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(client, prefix):
        for i in itertools.count():
            if stop.is_set():
                return
            batch = _docs(prefix, 5, start=i * 5)
            try:
                client.upsert("docs", batch)
            except RpcFailed as exc:  # the killed replica: its calls fail, none is acknowledged
                assert exc.code.name in ("UNAVAILABLE", "CANCELLED", "DEADLINE_EXCEEDED"), exc
                return
            with lock:
                acked.extend(d.id for d in batch)

    threads = [threading.Thread(target=writer, args=(c, p)) for c, p in ((ca, "ka"), (cb, "kb"))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while sum(i.startswith("ka") for i in acked) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    a.kill()  # SIGKILL mid-stream
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join(60)
    assert any(i.startswith("ka") for i in acked) and any(i.startswith("kb") for i in acked)
    found = {d.id for start in range(0, len(acked), 500)
             for d in cb.get("docs", acked[start:start + 500])}
    assert set(acked) <= found


@pytest.mark.slow
def test_milvus_outage_answers_unavailable_and_loses_nothing(replicas, milvus):
    (r,) = replicas(1)
    client = r.client(retries=0, timeout=10)
    client.create_collection("docs")
    acked: list[str] = []
    codes: list[str] = []
    stop = threading.Event()

    def load():
        for i in itertools.count():
            if stop.is_set():
                return
            batch = _docs("o", 5, start=i * 5)
            try:
                client.upsert("docs", batch)
                acked.extend(d.id for d in batch)
                client.search(batch[0].text, k=3)
                codes.append("OK")
            except RpcFailed as exc:
                codes.append(exc.code.name)
                time.sleep(0.1)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        while len(acked) < 30:
            time.sleep(0.05)
        milvus.kill()
        time.sleep(3.0)  # > the health poll interval
        health_down = client.health()
        outage_codes = len(codes)
        time.sleep(2.0)
        during = set(codes[outage_codes:])
        milvus.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not codes or codes[-1] != "OK"
                                               or client.health() != "SERVING"):
            time.sleep(0.2)
        mark = len(acked)
        time.sleep(1.0)
    finally:
        stop.set()
        worker.join(60)
    assert health_down == "NOT_SERVING"
    assert during == {"UNAVAILABLE"}, during  # never INTERNAL or UNKNOWN
    assert "INTERNAL" not in codes and "UNKNOWN" not in codes
    assert len(acked) > mark  # writes succeed again after the restart
    found = {d.id for start in range(0, len(acked), 500) for d in client.get("docs", acked[start:start + 500])}
    assert set(acked) <= found
