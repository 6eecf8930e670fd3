"""The storage port's contract, run against both stores: the embedded one (real
SQLite + FAISS in tmp_path) and the Milvus one (a real milvus-lite server process on
a free loopback port). Same calls, same answers: nearest and farthest equal brute
force, filters (with injection attempts), replace/delete visible to the next read,
offset/min_score, error codes naming the field, stats; lexical search equal to bm25s
over the same terms and to the other store (Japanese with the ja analyzer), hybrid
equal to the fusion of the two runs, filters/offset/min_score per mode."""
from __future__ import annotations

import uuid

import numpy as np
import pytest
from ixhelpers import SPECS, brute, unit
from test_ix_lexical import QUERIES, _same_ranking, bm25s_reference, corpus

from ranksearch import fusion
from ranksearch.errors import AlreadyExists, InvalidArgument, NotFound
from ranksearch.indexer import Document, Indexer, IndexerConfig, LexicalConfig, VariantSpec
from ranksearch.indexer.request import HybridParams, SearchDefaults, SearchRequest
from ranksearch.indexer.milvus_store import MilvusStore
from ranksearch.indexer.port import StoragePort

DIM = 16
HOSTILE = ['x" or 1==1 or metadata["g"] == "', "back\\\\slash\\\\", "it's \"quoted\"", "日本語 ü 😀",
           "line\nbreak", "] or true or [", "\\\" or id != \""]


@pytest.fixture(params=["embedded", "milvus"])
def make_store(request, tmp_path):
    opened = []

    def make(prefix: str | None = None) -> StoragePort:
        if request.param == "embedded":
            store = Indexer(tmp_path / f"ix{len(opened)}", IndexerConfig(snapshot_interval_s=0))
        else:
            server = request.getfixturevalue("milvus_lite")
            store = MilvusStore(server.uri, collection_prefix=prefix or f"t{uuid.uuid4().hex[:10]}_",
                                timeout_s=30)
        store.open()
        opened.append(store)
        return store

    make.kind = request.param
    yield make
    for store in opened:
        for info in store.list_collections():
            store.delete_collection(info.name)
        store.close()


@pytest.fixture
def store(make_store) -> StoragePort:
    return make_store()


def fill(store, n=120, seed=0, kinds=("flat",), meta=None):
    rng = np.random.default_rng(seed)
    store.create_collection("c", [VariantSpec(k, DIM, SPECS[k]) for k in kinds])
    x = unit(rng, n, DIM)
    docs = [Document(f"d{i}", f"text {i}", meta(i) if meta else {"g": str(i % 3)}) for i in range(n)]
    store.upsert("c", docs, {k: x for k in kinds})
    return x, unit(rng, 4, DIM)


def ids(hits):
    return [h.id for h in hits]


def test_both_stores_implement_the_port(store):
    assert isinstance(store, StoragePort)


@pytest.mark.parametrize("mode", ["nearest", "farthest"])
def test_flat_search_equals_brute_force(store, mode):
    x, q = fill(store)
    got = store.search("c", SearchRequest(variant="flat", k=10, mode=mode), q)
    scores, rows = brute(q, x, 10, farthest=mode == "farthest")
    for i in range(len(q)):
        assert ids(got[i]) == [f"d{r}" for r in rows[i]]
        np.testing.assert_allclose([h.score for h in got[i]], scores[i], atol=1e-5)
        assert got[i][0].text == f"text {rows[i][0]}"


def test_farthest_is_exact_on_an_approximate_index(store):
    x, q = fill(store, kinds=("hnsw",))
    got = store.search("c", SearchRequest(variant="hnsw", k=10, mode="farthest"), q)
    _, rows = brute(q, x, 10, farthest=True)
    assert [ids(h) for h in got] == [[f"d{r}" for r in row] for row in rows]
    near = store.search("c", SearchRequest(variant="hnsw", k=10), q)
    _, best = brute(q, x, 10)
    recall = np.mean([len(set(ids(h)) & {f"d{r}" for r in row}) / 10 for h, row in zip(near, best)])
    assert recall >= 0.9  # approximate nearest: most, not necessarily all


def test_filter_equals_brute_force_on_the_subset(store):
    x, q = fill(store)
    got = store.search("c", SearchRequest(k=5, filter={"g": "1"}), q)
    subset = np.array([i for i in range(len(x)) if i % 3 == 1])
    _, rows = brute(q, x[subset], 5)
    assert [ids(h) for h in got] == [[f"d{subset[r]}" for r in row] for row in rows]
    assert store.search("c", SearchRequest(k=5, filter={"nokey": "1"}), q) == [[] for _ in q]
    assert store.search("c", SearchRequest(k=5, filter={"g": "1", "nokey": "x"}), q) == [[] for _ in q]


def test_filter_values_cannot_inject(store):
    """Hostile values match only the document holding exactly that value; they never
    widen the filter (`" or 1==1`), break the expression, or fail."""
    x, q = fill(store, n=len(HOSTILE) + 5, meta=lambda i: {"g": HOSTILE[i] if i < len(HOSTILE) else "plain",
                                                           HOSTILE[i % len(HOSTILE)]: "k"})
    for i, value in enumerate(HOSTILE):
        assert ids(store.search("c", SearchRequest(k=50, filter={"g": value}), q[:1])[0]) == [f"d{i}"], value
        hits = store.search("c", SearchRequest(k=50, filter={value: "k"}), q[:1])[0]
        assert set(ids(hits)) == {f"d{j}" for j in range(len(x)) if j % len(HOSTILE) == i}, value
    assert store.search("c", SearchRequest(k=50, filter={"g": 'plain" or "1"=="1'}), q[:1])[0] == []


def test_replace_and_delete_are_visible_to_the_next_read(store):
    x, q = fill(store)
    top = store.search("c", SearchRequest(k=1), q[:1])[0][0].id
    store.upsert("c", [Document(top, "replaced", {"g": "new"})], {"flat": -q[:1]})  # now the farthest
    assert store.search("c", SearchRequest(k=1), q[:1])[0][0].id != top
    assert store.search("c", SearchRequest(k=1, mode="farthest"), q[:1])[0][0].id == top
    (doc,) = store.get("c", [top])
    assert (doc.text, doc.metadata, doc.version) == ("replaced", {"g": "new"}, 2)
    assert store.delete("c", [top, "never-existed"]) == 1
    assert top not in ids(store.search("c", SearchRequest(k=120, mode="farthest"), q[:1])[0])
    assert store.get("c", [top, "d0" if top != "d0" else "d1"])[0].id != top
    assert store.delete("c", [top]) == 0


def test_offset_and_min_score(store):
    x, q = fill(store)
    scores, rows = brute(q, x, 13)
    page = store.search("c", SearchRequest(k=5, offset=8), q)
    assert [ids(h) for h in page] == [[f"d{r}" for r in row[8:13]] for row in rows]
    cut = float(scores[0][4] + scores[0][5]) / 2  # between the 5th and 6th: no float ties
    kept = store.search("c", SearchRequest(k=50, min_score=cut), q[:1])[0]
    assert ids(kept) == [f"d{r}" for r in rows[0][:5]]
    far = store.search("c", SearchRequest(k=50, mode="farthest", min_score=-0.5), q[:1])[0]
    assert far and all(h.score <= -0.5 for h in far)


def test_bad_input_codes_name_the_field(store):
    fill(store)
    q = np.ones((1, DIM), np.float32)
    cases = [
        (lambda: store.search("c", SearchRequest(k=0), q), InvalidArgument, "k"),
        (lambda: store.search("c", SearchRequest(k=5, offset=-1), q), InvalidArgument, "offset"),
        (lambda: store.search("c", SearchRequest(k=5), np.full((1, DIM), np.nan, np.float32)), InvalidArgument, "queries[0]"),
        (lambda: store.search("c", SearchRequest(k=5), np.ones((1, DIM + 1), np.float32)), InvalidArgument, "queries"),
        (lambda: store.search("nope", SearchRequest(k=5), q), NotFound, "collection"),
        (lambda: store.search("c", SearchRequest(variant="nope", k=5), q), NotFound, "variant"),
        (lambda: store.search("c", SearchRequest(k=5, filter={"g": 1}), q), InvalidArgument, "filter.g"),
        (lambda: store.upsert("c", [Document("a", "t"), Document("a", "t")], {"flat": np.ones((2, DIM))}),
         InvalidArgument, "documents[1].id"),
        (lambda: store.upsert("c", [Document("", "t")], {"flat": np.ones((1, DIM))}), InvalidArgument,
         "documents[0].id"),
        (lambda: store.upsert("c", [Document("a", "t")], {"flat": np.zeros((1, DIM))}), InvalidArgument,
         "vectors[flat][0]"),
        (lambda: store.upsert("c", [Document("a", "t")], {"nope": np.ones((1, DIM))}), NotFound, "vectors[nope]"),
        (lambda: store.delete("c", ["x" * 300]), InvalidArgument, "ids[0]"),
        (lambda: store.create_collection("c", [VariantSpec("flat", DIM)]), AlreadyExists, "name"),
        (lambda: store.create_collection("bad name", [VariantSpec("v", DIM)]), InvalidArgument, "name"),
    ]
    for call, error, field in cases:
        with pytest.raises(error) as info:
            call()
        assert info.value.field == field, (field, info.value)
    assert store.get("c", ["a"]) == []  # nothing of a rejected batch was written


def test_stats_and_list(store):
    fill(store, n=30, kinds=("flat", "hnsw"))
    store.delete("c", ["d0", "d1"])
    (info,) = store.list_collections()
    assert (info.name, info.documents, info.default_variant) == ("c", 28, "flat")
    assert [v.name for v in info.variants] == ["flat", "hnsw"]
    stats = store.stats()["collections"]["c"]
    assert stats["documents"] == 28
    assert set(stats["variants"]) == {"flat", "hnsw"}
    assert all(v["vectors"] == 28 and v["index_type"] for v in stats["variants"].values())
    assert store.verify()["ok"]
    store.rebuild("c")
    store.delete_collection("c")
    assert store.list_collections() == []
    with pytest.raises(NotFound):
        store.search("c", SearchRequest(k=1), np.ones((1, DIM), np.float32))


def test_batches_larger_than_one_milvus_query_expression(store):
    """get/delete/replace of more ids than one `id in [...]` expression holds (1000)."""
    x, _ = fill(store, n=1500)
    ids_all = [f"d{i}" for i in range(1500)]
    assert [d.id for d in store.get("c", ids_all[::-1])] == ids_all[::-1]
    store.upsert("c", [Document(i, "again") for i in ids_all[:1200]], {"flat": x[:1200]})
    assert {d.version for d in store.get("c", ids_all)} == {1, 2}
    assert store.delete("c", ids_all[:1200]) == 1200
    assert [d.id for d in store.get("c", ids_all)] == ids_all[1200:]


# -- lexical and hybrid: the same analyzer, BM25 and fusion on both stores ------------------------------

def lexical_fill(store, docs=None, analyzer="standard", **lex):
    """Collection "c" (standard analyzer unless told) with `docs` (default: the lexical
    tests' Zipf corpus, ids zero-padded and written in id order, so that both stores
    break score ties alike); returns (docs, (n, DIM) vectors)."""
    docs = docs or [Document(f"d{i:02d}", d.text, d.metadata) for i, d in enumerate(corpus(60))]
    store.create_collection("c", [VariantSpec("flat", DIM)], lexical_config=LexicalConfig(analyzer=analyzer, **lex))
    x = unit(np.random.default_rng(1), len(docs), DIM)
    store.upsert("c", docs, {"flat": x})
    return docs, x


def scored(hits):
    return [(h.id, h.score) for h in hits]


@pytest.mark.parametrize("title_weight, k1, b", [(1, 1.5, 0.75), (2, 1.2, 0.5)])
def test_lexical_equals_bm25s_over_the_same_terms(store, title_weight, k1, b):
    docs, _ = lexical_fill(store, title_weight=title_weight, k1=k1, b=b)
    hits = store.search("c", SearchRequest(mode="lexical", k=10), texts=QUERIES)
    for row, ref in zip(hits, bm25s_reference(docs, QUERIES, 10, title_weight, k1, b)):
        _same_ranking(scored(row), ref)


@pytest.mark.parametrize("lengths", ["read", "counted"])
def test_lexical_and_hybrid_are_equal_on_both_stores(milvus_lite, tmp_path, monkeypatch, lengths):
    """The same documents in both stores: every lexical and hybrid page (filters,
    offset, min_score, explain) has the same ids in the same order; BM25 scores within
    1e-9 (the same float64 arithmetic on the same counts), cosines and fused scores
    within 1e-5 (FAISS and Milvus round float32 inner products differently, ~1e-7).
    Both ways the Milvus store sums document lengths: read per row (small
    collections) and counted per bit (large ones, forced here)."""
    from ranksearch.indexer import milvus_lexical

    if lengths == "counted":
        monkeypatch.setattr(milvus_lexical, "SCAN_MAX", 0)
    embedded = Indexer(tmp_path / "ix", IndexerConfig(snapshot_interval_s=0))
    milvus = MilvusStore(milvus_lite.uri, collection_prefix=f"x{uuid.uuid4().hex[:8]}_", timeout_s=30)
    embedded.open(), milvus.open()
    try:
        _, x = lexical_fill(embedded)
        lexical_fill(milvus)
        q = unit(np.random.default_rng(2), len(QUERIES), DIM)
        requests = [SearchRequest(mode="lexical", k=10, explain=True),
                    SearchRequest(mode="lexical", k=4, offset=3, filter={"g": "1"}),
                    SearchRequest(mode="lexical", k=20, min_score=2.0),
                    SearchRequest(mode="hybrid", k=10, explain=True),
                    SearchRequest(mode="hybrid", k=5, offset=2, filter={"g": "2"},
                                  hybrid=HybridParams(fusion="weighted", normalization="zscore", lexical_weight=2.0)),
                    SearchRequest(mode="hybrid", k=10, min_score=0.02, hybrid=HybridParams(rrf_k=10.0,
                                                                                           dense_candidates=15))]
        for request in requests:
            want = embedded.search("c", request, q, texts=QUERIES)
            got = milvus.search("c", request, q, texts=QUERIES)
            assert [ids(row) for row in got] == [ids(row) for row in want], request
            tolerance = 1e-9 if request.mode == "lexical" else 1e-5
            for g, w in zip(got, want):
                np.testing.assert_allclose([h.score for h in g], [h.score for h in w], rtol=0, atol=tolerance)
                assert [(h.text, h.metadata) for h in g] == [(h.text, h.metadata) for h in w]
                if request.explain:
                    for e, f in ((h.explain, i.explain) for h, i in zip(g, w)):
                        assert (e.dense_rank, e.lexical_rank) == (f.dense_rank, f.lexical_rank)
                        assert e.lexical_score == pytest.approx(f.lexical_score, abs=1e-9)
                        assert e.dense_score == pytest.approx(f.dense_score, abs=1e-5)
    finally:
        embedded.close(), milvus.close()


def test_japanese_documents_are_found_by_a_japanese_query(store):
    texts = ["パスワードを再設定したい場合は設定画面を開きます", "請求書の送付先を変更する方法",
             "ファイルを一行ずつ読み込む", "ログインできないときの対処", "Reset your password from the settings page"]
    docs = [Document(f"j{i}", t, {"title": "よくある質問"} if i % 2 else {}) for i, t in enumerate(texts)]
    lexical_fill(store, docs, analyzer="ja")
    for query, want in [("パスワードを再設定する", "j0"), ("請求書の送付先", "j1"), ("ファイルを読む", "j2"),
                        ("ログイン", "j3"), ("password", "j4")]:
        (hits,) = store.search("c", SearchRequest(mode="lexical", k=3), texts=[query])
        assert hits and hits[0].id == want, (query, scored(hits))
    (hits,) = store.search("c", SearchRequest(mode="lexical", k=5), texts=["よくある質問"])
    assert set(ids(hits)) == {"j1", "j3"}  # the title field is searched too


def test_hybrid_is_the_fusion_of_the_two_runs(store):
    _, x = lexical_fill(store)
    q = unit(np.random.default_rng(3), len(QUERIES), DIM)
    for h in (HybridParams(), HybridParams(fusion="weighted", dense_weight=0.3, normalization="minmax")):
        params = h.over(SearchDefaults().hybrid)
        depth = params.depths(10)
        dense = store.search("c", SearchRequest(k=depth[0]), q)
        lex = store.search("c", SearchRequest(mode="lexical", k=depth[1]), texts=QUERIES)
        got = store.search("c", SearchRequest(mode="hybrid", k=10, hybrid=h), q, texts=QUERIES)
        for g, d, l in zip(got, dense, lex):
            want = fusion.fuse([scored(d), scored(l)], [params.dense_weight, params.lexical_weight], params.fusion,
                               params.rrf_k, params.normalization)[:10]
            assert [round(s, 12) for _, s in scored(g)] == [round(s, 12) for _, s in want]
            assert {i for i, _ in scored(g)} == {i for i, _ in want}


def test_lexical_filter_offset_and_min_score(store):
    docs, _ = lexical_fill(store)
    full = store.search("c", SearchRequest(mode="lexical", k=60), texts=QUERIES)
    filtered = store.search("c", SearchRequest(mode="lexical", k=60, filter={"g": "1"}), texts=QUERIES)
    groups = {d.id: d.metadata["g"] for d in docs}
    for f, a in zip(filtered, full):  # the filter restricts, the statistics stay the collection's
        assert scored(f) == [(i, s) for i, s in scored(a) if groups[i] == "1"]
    page = store.search("c", SearchRequest(mode="lexical", k=5, offset=4), texts=QUERIES)
    assert [scored(p) for p in page] == [scored(a)[4:9] for a in full]
    row = scored(full[0])
    cut = (row[2][1] + row[3][1]) / 2
    assert scored(store.search("c", SearchRequest(mode="lexical", k=60, min_score=cut), texts=QUERIES[:1])[0]) == row[:3]
    fused = store.search("c", SearchRequest(mode="hybrid", k=20), unit(np.random.default_rng(4), 1, DIM),
                         texts=QUERIES[:1])[0]
    cut = (fused[4].score + fused[5].score) / 2
    kept = store.search("c", SearchRequest(mode="hybrid", k=20, min_score=cut),
                        unit(np.random.default_rng(4), 1, DIM), texts=QUERIES[:1])[0]
    assert scored(kept) == scored(fused)[:5]
    assert store.search("c", SearchRequest(mode="lexical", k=5, filter={"g": "nope"}), texts=QUERIES[:1]) == [[]]


def test_replace_and_delete_are_visible_to_the_next_lexical_search(store):
    docs, x = lexical_fill(store)
    store.upsert("c", [Document("d03", "zebra crossing"), Document("new", "zebra giraffe")], {"flat": x[:2]})
    store.delete("c", ["d05"])
    lex = lambda q: ids(store.search("c", SearchRequest(mode="lexical", k=60), texts=[q])[0])  # noqa: E731
    assert set(lex("zebra")) == {"d03", "new"} and lex("giraffe") == ["new"]
    assert "d03" not in lex(docs[3].text) and "d05" not in lex(docs[5].text)
    current = [d for d in docs if d.id not in ("d03", "d05")] + [Document("d03", "zebra crossing"),
                                                                  Document("new", "zebra giraffe")]
    got = store.search("c", SearchRequest(mode="lexical", k=10), texts=QUERIES)
    for row, ref in zip(got, bm25s_reference(current, QUERIES, 10)):  # N, df and avgdl follow the writes
        _same_ranking(scored(row), ref)


def test_long_terms_and_hostile_queries(store):
    long_word = "x" * 300  # longer than one stored Milvus term: stored and queried by its hash
    lexical_fill(store, [Document("a", f"{long_word} tail"), Document("b", "tail " + "y" * 300)])
    assert ids(store.search("c", SearchRequest(mode="lexical", k=5), texts=[long_word])[0]) == ["a"]
    assert store.search("c", SearchRequest(mode="lexical", k=5), texts=["", "!!! ..."]) == [[], []]
    q = np.ones((1, DIM), np.float32)
    for call, field in [(lambda: store.search("c", SearchRequest(mode="lexical", k=5)), "texts"),
                        (lambda: store.search("c", SearchRequest(mode="lexical", k=5), texts=[7]), "texts[0]"),
                        (lambda: store.search("c", SearchRequest(mode="hybrid", k=5), texts=["tail"]), "queries"),
                        (lambda: store.search("c", SearchRequest(mode="hybrid", k=5), q, texts=["a", "b"]), "texts")]:
        with pytest.raises(InvalidArgument) as info:
            call()
        assert info.value.field == field
    with pytest.raises(InvalidArgument) as info:  # FARTHEST with hybrid parameters
        SearchRequest(mode="farthest", hybrid=HybridParams(fusion="rrf"))
    assert info.value.field == "hybrid"


def test_lexical_settings_and_default_mode_belong_to_the_collection(make_store):
    store = make_store()
    store.create_collection("c", [VariantSpec("flat", DIM)], lexical_config=LexicalConfig(analyzer="ja"),
                            defaults=SearchDefaults(mode="hybrid", hybrid=HybridParams(rrf_k=5.0)))
    (info,) = store.list_collections()
    assert info.lexical.analyzer == "ja" and info.defaults.mode == "hybrid" and info.defaults.hybrid.rrf_k == 5.0
    store.upsert("c", [Document("a", "東京の天気")], {"flat": np.ones((1, DIM), np.float32)})
    (hits,) = store.search("c", SearchRequest(mode=None, k=1), np.ones((1, DIM), np.float32), texts=["東京"])
    assert hits[0].id == "a" and hits[0].score == pytest.approx(2 / 6)  # RRF k=5, rank 1 in both runs
    assert store.stats()["collections"]["c"]["lexical"]["analyzer"] == "ja"
    if make_store.kind == "milvus":  # a second replica reads the settings from Milvus
        assert make_store(prefix=store.prefix).get_collection("c").defaults == info.defaults
