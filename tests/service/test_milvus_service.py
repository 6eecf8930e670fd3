"""The service over the Milvus store (a real milvus-lite server process): the same
API end to end, two stores on one Milvus see each other's collections, an
unreachable Milvus answers UNAVAILABLE with a retry hint, and the core imports no
gRPC. Lexical search: bounds checked before Milvus sees anything, collections created
before the lexical index, two replicas answering alike."""
from __future__ import annotations

import subprocess
import sys
import uuid

import numpy as np

from ranksearch.indexer.request import SearchRequest
import pytest

from ranksearch.client import Document, RpcFailed
from ranksearch.errors import FailedPrecondition, InvalidArgument, Unavailable
from ranksearch.indexer import Document as StoredDocument
from ranksearch.indexer import IndexSpec, VariantSpec
from ranksearch.indexer import milvus_lexical as ml
from ranksearch.indexer.lexical import LexicalConfig
from ranksearch.indexer.milvus_store import MilvusStore
from ranksearch.indexer.milvus_testing import free_port
from ranksearch.service.errors import retry_delay_s, to_status


def _milvus(server, prefix):
    return {"store": {"kind": "milvus", "uri": server.uri, "collection_prefix": prefix, "timeout_s": 30}}


def test_service_end_to_end_over_milvus(make_server, milvus_lite):
    prefix = f"s{uuid.uuid4().hex[:8]}_"
    server = make_server(**_milvus(milvus_lite, prefix))
    client = server.client()
    client.create_collection("docs")
    texts = {"read": "read a file line by line", "sort": "sort a list of numbers",
             "hash": "compute a sha256 hash", "gzip": "compress data with gzip"}
    assert client.upsert("docs", [Document(i, t, {"kind": i}) for i, t in texts.items()]) == 4
    for doc_id, text in texts.items():
        hit = client.search(text, k=2, include_text=True).hits[0]
        assert (hit.id, hit.text) == (doc_id, text)
        assert hit.score == pytest.approx(1.0, abs=1e-4)
    assert [h.id for h in client.search("x", k=4, filter={"kind": "sort"}).hits] == ["sort"]
    lexical = client.search("file line", k=4, mode="lexical", explain=True)
    assert lexical.mode == "lexical" and [h.id for h in lexical.hits] == ["read"]
    assert lexical.hits[0].explain["lexical_rank"] == 1 and lexical.hits[0].score > 0
    hybrid = client.search("compress with gzip", k=2, mode="hybrid", explain=True).hits
    assert hybrid[0].id == "gzip" and (hybrid[0].explain["dense_rank"], hybrid[0].explain["lexical_rank"]) == (1, 1)
    assert client.delete("docs", ["sort", "nope"]) == 1
    assert "sort" not in [h.id for h in client.search("sort a list of numbers", k=4).hits]
    stats = client.stats("docs")
    assert stats.collections[0].documents == 3
    with pytest.raises(RpcFailed) as info:
        client.search("x", filter={"kind": "a\x01b"})
    assert info.value.code.name == "INVALID_ARGUMENT" and info.value.field == "filter.kind"
    # live variant changes need the embedded store: a clear refusal, never INTERNAL
    from ranksearch.client import Variant
    for call in (lambda: client.add_variant("docs", Variant(name="cand")),
                 lambda: client.promote_variant("docs", "default"),
                 lambda: client.remove_variant("docs", "default")):
        with pytest.raises(RpcFailed) as info:
            call()
        assert info.value.code.name == "FAILED_PRECONDITION" and "embedded store" in info.value.message


def test_a_second_store_on_the_same_milvus_sees_collections_and_writes(milvus_lite):
    prefix = f"r{uuid.uuid4().hex[:8]}_"
    a = MilvusStore(milvus_lite.uri, collection_prefix=prefix, timeout_s=30)
    b = MilvusStore(milvus_lite.uri, collection_prefix=prefix, timeout_s=30)
    a.open(), b.open()
    try:
        a.create_collection("shared", [VariantSpec("v", 4)])
        x = np.eye(4, dtype=np.float32)
        b.upsert("shared", [StoredDocument(f"d{i}", "t") for i in range(4)], {"v": x})  # b opened before
        assert [h.id for h in a.search("shared", SearchRequest(k=1), x[2:3])[0]] == ["d2"]
        assert [c.name for c in b.list_collections()] == ["shared"]
        b.delete_collection("shared")
        assert a.list_collections() == []
    finally:
        a.close(), b.close()


def test_bounds_and_control_characters_are_refused_naming_the_field(milvus_lite):
    store = MilvusStore(milvus_lite.uri, collection_prefix=f"m{uuid.uuid4().hex[:8]}_", timeout_s=30)
    store.open()
    try:
        store.create_collection("c", [VariantSpec("v", 4)], lexical_config=LexicalConfig(analyzer="standard"))
        q = np.ones((1, 4), np.float32)
        with pytest.raises(InvalidArgument) as info:
            store.search("c", SearchRequest(k=3, filter={"k": "nul\x00"}), q)
        assert info.value.field == "filter.k"
        with pytest.raises(InvalidArgument) as info:
            store.upsert("c", [StoredDocument("d", "é" * 40000)], {"v": q})
        assert info.value.field == "documents[0].text" and "65535" in info.value.message
        with pytest.raises(InvalidArgument) as info:
            store.create_collection("f", [VariantSpec("v", 4, index=IndexSpec("IVF64,PQ8"))])
        assert info.value.field == "variants[0].index.kind"
        # lexical bounds, checked before Milvus sees the document or the query
        many = " ".join(f"w{i}" for i in range(ml.MAX_DOC_TERMS + 1))
        with pytest.raises(InvalidArgument) as info:
            store.upsert("c", [StoredDocument("ok", "fine"), StoredDocument("big", many)], {"v": np.ones((2, 4))})
        assert info.value.field == "documents[1].text" and str(ml.MAX_DOC_TERMS) in info.value.message
        assert store.get("c", ["ok", "big"]) == []  # nothing of the batch was written
        with pytest.raises(InvalidArgument) as info:
            store.search("c", SearchRequest(k=3, mode="lexical"), texts=["x y", many])
        assert info.value.field == "texts[1]" and str(ml.MAX_QUERY_TERMS) in info.value.message
        long_words = " ".join("w" * 123 + f"{i:03d}" for i in range(256))  # 256 terms of 126 bytes
        with pytest.raises(InvalidArgument) as info:
            store.search("c", SearchRequest(k=3, mode="lexical"), texts=[long_words])
        assert info.value.field == "texts[0]" and "Milvus expression" in info.value.message
        huge = "word " * 30000  # one distinct term, 150 kB: fine, the query sent to Milvus is one term
        assert store.search("c", SearchRequest(k=3, mode="lexical"), texts=[huge]) == [[]]
    finally:
        store.delete_collection("c")
        store.close()


def test_a_collection_created_before_the_lexical_index_answers_failed_precondition(milvus_lite):
    """A definition of schema 1 (no lexical settings, no lex_* fields), as the Milvus
    store wrote before: dense search and writes work, lexical and hybrid answer
    FAILED_PRECONDITION naming `mode` and saying why."""
    from pymilvus import MilvusClient

    from ranksearch.indexer import milvus_schema as ms
    from ranksearch.indexer.request import SearchDefaults

    prefix = f"o{uuid.uuid4().hex[:8]}_"
    store = MilvusStore(milvus_lite.uri, collection_prefix=prefix, timeout_s=30)
    store.open()
    raw = MilvusClient(uri=milvus_lite.uri)
    try:
        old = ms.Definition.new(prefix, "old", [VariantSpec("v", 4)], "v", None, SearchDefaults())
        assert old.to_json()["schema_version"] == 1 and "settings" not in old.to_json()
        schema, indexes = ms.data_schema(MilvusClient, old, 256)
        raw.create_collection(old.physical, schema=schema, index_params=indexes, consistency_level="Strong")
        raw.upsert(f"{prefix}meta", [{"name": "old", "definition": old.to_json(), "_unused": [1.0, 0.0]}])
        x = np.eye(4, dtype=np.float32)
        store.upsert("old", [StoredDocument(f"d{i}", "some words") for i in range(4)], {"v": x})
        assert [h.id for h in store.search("old", SearchRequest(k=1), x[1:2])[0]] == ["d1"]
        for mode in ("lexical", "hybrid"):
            with pytest.raises(FailedPrecondition) as info:
                store.search("old", SearchRequest(k=3, mode=mode), x[:1], texts=["words"])
            assert info.value.field == "mode" and "before the Milvus store had a lexical index" in info.value.message
        assert to_status(info.value).code.name == "FAILED_PRECONDITION"
        assert store.get_collection("old").lexical is None
        assert store.stats()["collections"]["old"]["lexical"]["documents"] == 0
    finally:
        store.delete_collection("old")
        raw.close()
        store.close()


def test_length_sums_read_and_counted_agree_with_the_documents(milvus_lite):
    """The two ways the store sums lengths from Milvus give the exact totals, with
    titles and with lengths past 2^12 (the high bit group)."""
    from ranksearch.indexer import lexical

    store = MilvusStore(milvus_lite.uri, collection_prefix=f"n{uuid.uuid4().hex[:8]}_", timeout_s=30)
    store.open()
    try:
        cfg = LexicalConfig(analyzer="standard")
        store.create_collection("c", [VariantSpec("v", 4)], lexical_config=cfg)
        docs = [StoredDocument("a", "alpha beta " * 3000, {"title": "long one"}), StoredDocument("b", "gamma"),
                StoredDocument("c", "delta epsilon zeta", {"title": "a title with words"}),
                StoredDocument("d", " ".join(f"w{i}" for i in range(4000)))]
        store.upsert("c", docs, {"v": np.ones((4, 4), np.float32)})
        store.delete("c", ["b"])
        terms = [lexical.analyse(cfg, d.text, d.metadata) for d in docs if d.id != "b"]
        want = (3, sum(t.len_title for t in terms), sum(t.len_text for t in terms))
        definition = store._definition("c")

        def count(e):
            return store._count_where(definition, e)

        def fetch(e, out):
            return store._query_all(definition, e, out)
        for scan_max in (0, 10):
            s = ml.corpus_stats(count, fetch, scan_max)
            assert (s.docs, s.len_title, s.len_text) == want, scan_max
        assert want[2] >= 1 << ml.HIGH_BIT
    finally:
        store.delete_collection("c")
        store.close()


def test_two_replicas_answer_lexical_searches_alike(milvus_lite):
    """Two stores over one Milvus: what one writes, the other finds lexically with the
    same BM25 score; statistics follow writes made through either."""
    prefix = f"l{uuid.uuid4().hex[:8]}_"
    a = MilvusStore(milvus_lite.uri, collection_prefix=prefix, timeout_s=30)
    b = MilvusStore(milvus_lite.uri, collection_prefix=prefix, timeout_s=30)
    a.open(), b.open()
    try:
        a.create_collection("c", [VariantSpec("v", 4)], lexical_config=LexicalConfig(analyzer="ja"))
        x = np.eye(4, dtype=np.float32)
        a.upsert("c", [StoredDocument("a0", "東京の天気は晴れ"), StoredDocument("a1", "大阪の天気は雨")], {"v": x[:2]})
        b.upsert("c", [StoredDocument("b0", "東京タワーの高さ"), StoredDocument("b1", "京都のお寺")], {"v": x[2:]})
        request = SearchRequest(k=4, mode="lexical")
        for query in ("東京", "天気", "京都のお寺"):
            got_a, got_b = a.search("c", request, texts=[query])[0], b.search("c", request, texts=[query])[0]
            assert got_a and [(h.id, h.score) for h in got_a] == [(h.id, h.score) for h in got_b]
        assert {h.id for h in b.search("c", request, texts=["東京"])[0]} == {"a0", "b0"}
        before = a.search("c", request, texts=["東京"])[0][0].score
        b.delete("c", ["b1"])  # N and avgdl change for both replicas at once
        after_a, after_b = a.search("c", request, texts=["東京"])[0], b.search("c", request, texts=["東京"])[0]
        assert after_a[0].score == after_b[0].score != before
    finally:
        a.delete_collection("c")
        a.close(), b.close()


def test_unreachable_milvus_is_unavailable_with_a_retry_hint():
    store = MilvusStore(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(Unavailable) as info:
        store.open()
    assert info.value.field == "store" and "retry" in info.value.message
    status = to_status(info.value)
    assert status.code.name == "UNAVAILABLE"

    class Call:  # what rpc_status.from_call reads from a client-side error
        def trailing_metadata(self):
            return status.trailing_metadata

        def code(self):
            return status.code

        def details(self):
            return status.details

    assert retry_delay_s(Call()) == pytest.approx(info.value.retry_after_s)


def test_the_core_imports_no_grpc():
    code = "import sys, ranksearch.service.core; print(sorted(m for m in sys.modules if m.split('.')[0] == 'grpc'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_doctor_checks_milvus_reachability_version_and_load_state(milvus_lite, tmp_path):
    from ranksearch.service.doctor import FAIL, OK, run_doctor

    prefix = f"dr{uuid.uuid4().hex[:8]}_"
    store = MilvusStore(milvus_lite.uri, collection_prefix=prefix, timeout_s=30)
    store.open()
    store.create_collection("docs", [VariantSpec("v", 4)])
    store.close()
    config = tmp_path / "c.yaml"
    config.write_text(f"store: {{kind: milvus, uri: '{milvus_lite.uri}', collection_prefix: {prefix}}}\n"
                      f"data_dir: {tmp_path / 'data'}\nmetrics: {{port: null}}\nlisten: 127.0.0.1:0\n")
    (check,) = [c for c in run_doctor(str(config), load_models=False) if c.name == "milvus"]
    assert check.status == OK and "milvus_lite" in check.detail and "docs: Loaded, 0 documents" in check.detail
    assert not [c for c in run_doctor(str(config), load_models=False) if c.name == "index"]
    config.write_text(f"store: {{kind: milvus, uri: 'http://127.0.0.1:{free_port()}', timeout_s: 2}}\n"
                      f"data_dir: {tmp_path / 'data'}\nmetrics: {{port: null}}\nlisten: 127.0.0.1:0\n")
    (check,) = [c for c in run_doctor(str(config), load_models=False) if c.name == "milvus"]
    assert check.status == FAIL and "cannot be reached" in check.detail


def test_create_reuses_only_an_empty_leftover_and_delete_can_be_retried(milvus_lite):
    from pymilvus import MilvusClient

    from ranksearch.errors import AlreadyExists
    from ranksearch.indexer.milvus_schema import physical_name

    prefix = f"lo{uuid.uuid4().hex[:8]}_"
    store = MilvusStore(milvus_lite.uri, collection_prefix=prefix, timeout_s=30)
    store.open()
    raw = MilvusClient(uri=milvus_lite.uri)
    try:
        store.create_collection("c", [VariantSpec("v", 4)])
        store.upsert("c", [StoredDocument("d", "t")], {"v": np.ones((1, 4), np.float32)})
        # a definition lost while its data stays (removed by hand): never reused, never dropped
        raw.delete(f"{prefix}meta", filter='name == "c"')
        with pytest.raises(AlreadyExists) as info:
            store.create_collection("c", [VariantSpec("v", 4)])
        assert "not an empty collection" in info.value.message
        raw.drop_collection(physical_name(prefix, "c"))
        store.create_collection("c", [VariantSpec("v", 4)])
        raw.drop_collection(physical_name(prefix, "c"))  # a delete that died after the drop
        store.delete_collection("c")  # the retry completes
        assert store.list_collections() == []
    finally:
        raw.close()
        store.close()


def test_store_config_is_typed_and_the_token_comes_from_the_environment(monkeypatch):
    from ranksearch.errors import ConfigError
    from ranksearch.service.config import ServiceConfig, from_dict
    from ranksearch.service.storage import make_store

    bad = [({"kind": "milvus", "urii": "x"}, "store.urii"), ({"consistency_level": "strong"}, "store.consistency_level"),
           ({"uri": "ftp://h:1"}, "store.uri"), ({"ca_file": "/ca.pem"}, "store.ca_file"),
           ({"shards_num": 0}, "store.shards_num"), ({"collection_prefix": "9x"}, "store.collection_prefix")]
    for section, field in bad:
        with pytest.raises(ConfigError) as info:
            from_dict(ServiceConfig, {"store": section})
        assert info.value.field == field, section
    config = from_dict(ServiceConfig, {"store": {"kind": "milvus", "uri": "https://milvus.internal:19530",
                                                 "token_env": "MILVUS_TOKEN_FOR_TEST", "ca_file": "/etc/ca.pem",
                                                 "server_name": "milvus.internal"}})
    with pytest.raises(ConfigError) as info:
        config.store.token({})
    assert info.value.field == "store.token_env"
    assert config.store.token({"MILVUS_TOKEN_FOR_TEST": "root:secret"}) == "root:secret"
    monkeypatch.setenv("MILVUS_TOKEN_FOR_TEST", "root:secret")
    store = make_store(config)  # not opened: no connection is made
    assert store._connect_args["token"] == "root:secret"
    assert store._connect_args["server_pem_path"] == "/etc/ca.pem"
    assert store._connect_args["uri"].startswith("https://")  # pymilvus: https = TLS


def test_import_with_two_servers_spreads_batches_over_both_replicas(make_server, milvus_lite, tmp_path, capsys):
    import json

    from ranksearch.cli import main

    store = _milvus(milvus_lite, f"i{uuid.uuid4().hex[:8]}_")
    a = make_server(data_dir=tmp_path / "a", **store)
    b = make_server(data_dir=tmp_path / "b", **store)
    a.client().create_collection("docs")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document number {i}"}) + "\n"
                              for i in range(60)))
    rc = main(["import", str(corpus), "--collection", "docs", "--batch-size", "5", "--quiet",
               "--server", a.address, "--server", b.address])
    assert rc == 0 and "imported 60" in capsys.readouterr().out
    upserts = [s.server.access.counts.get("Upsert", 0) for s in (a, b)]
    assert sum(upserts) == 12 and min(upserts) >= 1, upserts  # each replica encoded a share
    assert b.client().stats("docs").collections[0].documents == 60
