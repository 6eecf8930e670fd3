"""Live experiments against a real server: add and build a variant while writes go
on, resume a build after a restart, sticky split, shadow, interleaving with
feedback, promote and roll back under load, audit."""
from __future__ import annotations

import shutil
import threading
import time

import grpc
import numpy as np
import pytest

from ranksearch.client import Document, RpcFailed, Variant
from ranksearch.service.routing import rendezvous
from ranksearch.service.testing import build_tiny_model

WORDS = ["files", "lists", "json", "regex", "gzip", "threads", "sockets", "dates", "paths", "hashes"]


def _docs(n, start=0, tag=""):
    return [Document(f"d{i}", f"note {i} {tag} about {WORDS[i % 10]} and {WORDS[(i * 3) % 10]}")
            for i in range(start, start + n)]


@pytest.fixture(scope="session")
def other_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("other") / "other", seed=1)


@pytest.fixture
def ab_server(make_server, tmp_path, other_model):
    def make(**overrides):
        data = tmp_path / "data"
        if not (data / "models" / "other").exists():
            shutil.copytree(other_model, data / "models" / "other")
        return make_server(data_dir=data, **overrides)
    return make


def _wait_built(client, collection, variant, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for c in client.stats(collection).collections:
            for v in c.variants:
                if v.name == variant and v.build_state == "ready":
                    return v
        time.sleep(0.1)
    raise AssertionError(f"{variant} not built in {timeout} s")


def _with_candidate(ab_server, n, **overrides):
    """A server whose collection `docs` holds n documents and a built variant `cand`."""
    server = ab_server(**overrides)
    client = server.client()
    client.create_collection("docs")
    client.upsert("docs", _docs(n))
    client.add_variant("docs", Variant(name="cand", model="other"))
    _wait_built(client, "docs", "cand")
    return server, client


def _store_matches(server, collection="docs"):
    store = server.server.indexer.store
    docs = store.count_documents(collection)
    info = server.server.core.collection(collection)
    return {v.name: store.count_vectors(collection, v.name) for v in info.variants}, docs


def test_add_variant_while_upserts_continue(ab_server):
    server = ab_server()
    client = server.client()
    client.create_collection("docs")
    client.upsert("docs", _docs(300))
    stop, errors, written = threading.Event(), [], []

    def writer():
        i = 0
        while not stop.is_set():
            try:  # new documents and replacements of old ones, interleaved with the build
                client.upsert("docs", _docs(5, start=300 + i) + _docs(3, start=(i * 7) % 300, tag=f"v{i}"))
                written.append(i)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            i += 5

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.2)
    info = client.add_variant("docs", Variant(name="cand", model="other"))
    assert "cand" in [v.name for v in info.variants]
    with pytest.raises(RpcFailed) as exc:  # no traffic until built
        while True:
            client.search("json", collection="docs", variant="cand")
    assert exc.value.code == grpc.StatusCode.FAILED_PRECONDITION and "being built" in str(exc.value)
    _wait_built(client, "docs", "cand")
    time.sleep(0.3)
    stop.set()
    t.join()
    assert not errors and written
    counts, docs = _store_matches(server)
    assert counts == {"default": docs, "cand": docs}
    assert client.verify().ok
    # every vector of the new variant encodes its document's current text
    store = server.server.indexer.store
    seqs, vecs = store.load_vectors("docs", "cand", 32)
    texts = store.texts(seqs.tolist())
    sample = list(range(0, len(seqs), max(1, len(seqs) // 40)))
    fresh, _ = client.embed([texts[int(seqs[i])] for i in sample], collection="docs", variant="cand")
    assert np.allclose(fresh, vecs[sample], atol=1e-5)
    hits = client.search(texts[int(seqs[0])], collection="docs", variant="cand", k=1).hits
    assert hits[0].score > 0.99


def test_a_build_resumes_after_a_restart(ab_server, monkeypatch):
    from ranksearch.service import backfill

    slow = threading.Event()
    original = backfill.VariantBuilder._throttle

    def throttle(self):  # hold each batch a moment so the stop lands mid-build
        original(self)
        if not slow.is_set():
            time.sleep(0.05)

    monkeypatch.setattr(backfill.VariantBuilder, "_throttle", throttle)
    server = ab_server(experiments={"build_batch": 10})
    client = server.client()
    client.create_collection("docs")
    client.upsert("docs", _docs(400))
    client.add_variant("docs", Variant(name="cand", model="other"))
    time.sleep(0.6)
    data_dir = server.config.data_dir
    server.__exit__(None, None, None)
    counts, docs = _store_matches_offline(data_dir)
    assert 0 < counts < docs  # really stopped in the middle
    slow.set()
    again = ab_server(experiments={"build_batch": 10})
    c2 = again.client()
    v = _wait_built(c2, "docs", "cand")
    assert v.build_done == v.build_total == 400
    counts, docs = _store_matches(again)
    assert counts == {"default": 400, "cand": 400}
    assert c2.search("note 5 about sockets", collection="docs", variant="cand").hits


def _store_matches_offline(data_dir):
    from ranksearch.indexer.store import Store
    from pathlib import Path
    store = Store(Path(data_dir) / "index")
    try:
        return store.count_vectors("docs", "cand"), store.count_documents("docs")
    finally:
        store.close()


def test_split_is_sticky_and_a_weight_change_moves_the_expected_share(ab_server):
    server, client = _with_candidate(ab_server, 50)
    assert client.set_traffic("docs", {"default": 0.8, "cand": 0.2}) == {"default": 0.8, "cand": 0.2}
    keys = [f"user{i}" for i in range(120)]
    first = {k: client.search("json", collection="docs", routing_key=k).variant for k in keys}
    assert first == {k: rendezvous("docs", k, {"default": 0.8, "cand": 0.2}) for k in keys}
    assert first == {k: client.search("paths", collection="docs", routing_key=k).variant for k in keys}
    assert 0.05 < sum(v == "cand" for v in first.values()) / len(keys) < 0.4
    client.set_traffic("docs", {"default": 0.5, "cand": 0.5})
    second = {k: client.search("json", collection="docs", routing_key=k).variant for k in keys}
    assert all(first[k] == "default" and second[k] == "cand" for k in keys if first[k] != second[k])
    # split traffic is logged: a query id comes back, feedback is accepted
    res = client.search("json", collection="docs", routing_key="user1")
    assert res.query_id and client.feedback(res.query_id, [res.hits[0].id]) == 1
    with pytest.raises(RpcFailed) as exc:
        client.set_traffic("docs", {"nope": 1.0})
    assert exc.value.code == grpc.StatusCode.NOT_FOUND


def test_shadow_never_changes_responses(ab_server):
    server, client = _with_candidate(ab_server, 80, metrics={"port": 0})
    queries = [f"note about {w}" for w in WORDS] * 3

    def answers():
        return [[(h.id, round(h.score, 6)) for h in client.search(q, collection="docs", routing_key=q).hits]
                for q in queries]

    before = answers()
    client.set_shadow("docs", "cand", 1.0)
    during = answers()
    assert during == before
    assert server.server.live.shadow.idle(30)
    report = client.experiment_report("docs")
    row, = report["shadow"]
    assert row["primary"] == "default" and row["shadow"] == "cand" and row["requests"] == len(queries)
    assert 0.0 <= row["overlap_mean"] <= 1.0 and row["shadow_ms_p50"] > 0
    stats = client.stats("docs").collections[0]
    assert stats.shadow_done == len(queries) and '"shadow"' in stats.experiments_json
    import urllib.request
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.server.metrics_port}/metrics",
                                  timeout=10).read().decode()
    assert f'ranksearch_shadow_searches_total{{outcome="done"}} {float(len(queries))}' in body
    client.set_shadow("docs", "", 0.0)
    assert answers() == before


def test_interleaving_feedback_and_readout(ab_server):
    server, client = _with_candidate(ab_server, 60)
    with pytest.raises(RpcFailed) as exc:
        client.search("json", collection="docs", interleave=True)
    assert exc.value.code == grpc.StatusCode.FAILED_PRECONDITION and exc.value.field == "interleave"
    client.set_interleave("docs", "default", "cand", 0.0)
    wins = 0
    for i in range(30):
        res = client.search(f"note about {WORDS[i % 10]}", collection="docs", k=6, interleave=True)
        assert res.variant == "default+cand" and res.query_id
        assert {h.team for h in res.hits} <= {"default", "cand"} and len({h.id for h in res.hits}) == len(res.hits)
        clicked = [h.id for h in res.hits if h.team == "cand"][:1]  # users prefer cand's hits
        if clicked:
            assert client.feedback(res.query_id, clicked, [1200.0]) == 1
            wins += 1
    report = client.experiment_report("docs")
    row, = report["interleave"]
    assert (row["variant_a"], row["variant_b"]) == ("default", "cand")
    assert row["wins_b"] == wins and row["wins_a"] == 0 and row["p_value"] < 0.01
    with pytest.raises(RpcFailed) as exc:
        client.feedback("0" * 32, ["d1"])
    assert exc.value.code == grpc.StatusCode.NOT_FOUND and exc.value.field == "query_id"
    res = client.search("json", collection="docs", k=3, interleave=True)
    with pytest.raises(RpcFailed) as exc:
        client.feedback(res.query_id, ["never-shown"])
    assert exc.value.code == grpc.StatusCode.INVALID_ARGUMENT and exc.value.field == "clicked_ids[0]"


def test_promote_under_load_and_roll_back(ab_server):
    server, client = _with_candidate(ab_server, 80)
    client.set_traffic("docs", {"default": 0.5, "cand": 0.5})
    stop, failures, served = threading.Event(), [], []

    def load(n):
        c = server.client()
        i = 0
        while not stop.is_set():
            try:
                served.append(c.search(f"note about {WORDS[i % 10]}", collection="docs",
                                       routing_key=f"{n}-{i}").variant)
                if i % 5 == 0:
                    c.upsert("docs", _docs(1, start=i % 80, tag=f"t{n}"))
            except Exception as exc:  # noqa: BLE001
                failures.append(exc)
            i += 1

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert client.promote_variant("docs", "cand") == "default"
    time.sleep(0.5)
    mark = len(served)
    time.sleep(0.5)
    after = served[mark:]
    assert client.promote_variant("docs", "default") == "cand"  # the rollback is the same call
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert not failures
    assert after and set(after) == {"cand"}  # all traffic moved with the promotion
    info, = [c for c in client.list_collections().collections if c.name == "docs"]
    assert info.default_variant == "default"
    actions = [(e["action"], e["details"].get("to")) for e in client.experiment_report("docs")["audit"]]
    assert ("PromoteVariant", "cand") in actions and ("PromoteVariant", "default") in actions
    assert all(e["who"] for e in client.experiment_report("docs")["audit"])


def test_remove_variant_and_bad_requests(ab_server):
    server = ab_server()
    client = server.client()
    client.create_collection("docs")
    client.upsert("docs", _docs(20))
    with pytest.raises(RpcFailed) as exc:
        client.add_variant("docs", Variant(name="bad name!", model="other"))
    assert exc.value.code == grpc.StatusCode.INVALID_ARGUMENT and exc.value.field == "variant.name"
    with pytest.raises(RpcFailed) as exc:
        client.add_variant("docs", Variant(name="x", model="missing-model"))
    assert exc.value.code == grpc.StatusCode.NOT_FOUND and exc.value.field == "variant.model"
    client.add_variant("docs", Variant(name="cand", model="other"))
    _wait_built(client, "docs", "cand")
    with pytest.raises(RpcFailed) as exc:
        client.remove_variant("docs", "default")
    assert exc.value.code == grpc.StatusCode.FAILED_PRECONDITION
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(RpcFailed) as exc:
            client.set_shadow("docs", "cand", bad)
        assert exc.value.code == grpc.StatusCode.INVALID_ARGUMENT and exc.value.field == "fraction"
    client.set_shadow("docs", "cand", 0.5)
    assert client.remove_variant("docs", "cand")
    info, = [c for c in client.list_collections().collections if c.name == "docs"]
    assert [v.name for v in info.variants] == ["default"]
    assert client.stats("docs").collections[0].experiments_json == "{}"
    assert client.verify().ok
    client.upsert("docs", _docs(2, start=100))  # writes no longer carry the removed variant


def test_cli_runs_an_experiment_and_eval_live_judges_it(ab_server, tmp_path, capsys):
    from ranksearch.cli import main

    server, client = _with_candidate(ab_server, 40)
    addr = ["--collection", "docs", "--server", server.address]
    assert main(["ab", "traffic", *addr, "default=0.5", "cand=0.5"]) == 0
    assert main(["ab", "interleave", *addr, "--a", "default", "--b", "cand", "--fraction", "1"]) == 0
    for i in range(6):
        res = client.search(f"note about {WORDS[i]}", collection="docs", k=4)
        client.feedback(res.query_id, [res.hits[0].id])
    capsys.readouterr()
    assert main(["ab", "status", *addr]) == 0
    out = capsys.readouterr().out
    assert "interleave default vs cand: 6 impressions" in out
    page = tmp_path / "ab.html"
    assert main(["ab", "report", *addr, "--out", str(page), "--lang", "ja"]) == 0
    html = page.read_text(encoding="utf-8")
    assert "インターリービング" in html and "default" in html and "<table" in html
    assert main(["ab", "promote", *addr, "--variant", "nope"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    # eval live: every variant answers every query; judged by qrels
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(f'{{"_id": "q{i}", "text": "note {i} about {WORDS[i % 10]}"}}\n'
                               for i in range(10)), encoding="utf-8")
    qrels = tmp_path / "test.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(10)))
    assert main(["eval", "live", "--server", server.address, "--collection", "docs",
                 "--queries", str(queries), "--qrels", str(qrels), "--out", str(tmp_path / "live")]) == 0
    out = capsys.readouterr().out
    assert "default" in out and "cand" in out and "base" in out
    import json
    live = json.loads((tmp_path / "live" / "live.json").read_text())
    assert set(live["variants"]) == {"default", "cand"} and live["judged_queries"] == 10
    assert 0 <= live["variants"]["cand"]["ndcg@10"] <= 1 and "p_vs_default" in live["variants"]["cand"]
