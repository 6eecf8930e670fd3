"""The storage port's contract, run against both stores: the embedded one (real
SQLite + FAISS in tmp_path) and the Milvus one (a real milvus-lite server process on
a free loopback port). Same calls, same answers: nearest and farthest equal brute
force, filters (with injection attempts), replace/delete visible to the next read,
offset/min_score, error codes naming the field, stats."""
from __future__ import annotations

import uuid

import numpy as np

from ranksearch.indexer.request import SearchRequest
import pytest
from ixhelpers import SPECS, brute, unit

from ranksearch.errors import AlreadyExists, InvalidArgument, NotFound
from ranksearch.indexer import Document, Indexer, IndexerConfig, VariantSpec
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
