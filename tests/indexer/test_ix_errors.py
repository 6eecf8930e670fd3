"""Every bad input gets a typed error naming the field; a rejected batch writes nothing."""
from __future__ import annotations

import numpy as np
import pytest

from ixhelpers import docs, unit
from ranksearch.errors import AlreadyExists, ConfigError, InvalidArgument, NotFound
from ranksearch.indexer import Document, HybridParams, IndexerConfig, IndexSpec, SearchRequest, VariantSpec


@pytest.fixture
def two(ix):
    """Collection 'c' with variants fast (dim 4) and slow (dim 6), holding d0..d2."""
    ix.create_collection("c", [VariantSpec("fast", 4), VariantSpec("slow", 6, IndexSpec("hnsw"))])
    rng = np.random.default_rng(0)
    ix.upsert("c", docs(3), {"fast": unit(rng, 3, 4), "slow": unit(rng, 3, 6)})
    return ix


def _vecs(n, rng=np.random.default_rng(1)):
    return {"fast": unit(rng, n, 4), "slow": unit(rng, n, 6)}


def _raises(exc_type, field, fragment, fn, *args, **kwargs):
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    assert info.value.field == field, str(info.value)
    assert fragment in info.value.message, str(info.value)
    return info.value


@pytest.mark.parametrize(
    "mutate, field, fragment",
    [
        (lambda v: v["fast"].__setitem__((3, 0), np.nan), "vectors[fast][3]", "NaN or inf"),
        (lambda v: v["slow"].__setitem__((1, 2), np.inf), "vectors[slow][1]", "NaN or inf"),
        (lambda v: v["fast"].__setitem__(2, 0.0), "vectors[fast][2]", "zero vector"),
        (lambda v: v.__setitem__("fast", v["fast"][:, :3]), "vectors[fast]", "width 3, the variant's dim is 4"),
        (lambda v: v.__setitem__("slow", v["slow"][:4]), "vectors[slow]", "has 4 rows, expected 5"),
        (lambda v: v.__setitem__("fast", v["fast"][0]), "vectors[fast]", "2-d array"),
        (lambda v: v.pop("slow"), "vectors", "missing variant 'slow'"),
    ],
)
def test_bad_vectors(two, mutate, field, fragment):
    vecs = _vecs(5)
    mutate(vecs)
    _raises(InvalidArgument, field, fragment, two.upsert, "c", docs(5, prefix="new"), vecs)
    assert two.get_collection("c").documents == 3  # nothing partial written
    assert two.get("c", [f"new{i}" for i in range(5)]) == []


def test_unknown_variant_in_vectors(two):
    vecs = _vecs(2)
    vecs["medium"] = vecs["fast"]
    _raises(NotFound, "vectors[medium]", "no variant 'medium'", two.upsert, "c", docs(2, "n"), vecs)


@pytest.mark.parametrize(
    "batch, field, fragment",
    [
        ([Document("a"), Document("")], "documents[1].id", "is empty"),
        ([Document("a"), Document("b"), Document("a")], "documents[2].id", "duplicates documents[0].id"),
        ([Document("x" * 65)], "documents[0].id", "65 characters long, the limit is 64"),
        ([Document(7)], "documents[0].id", "must be a string"),
        ([Document("a", metadata={"lang": 3})], "documents[0].metadata.lang", "must be a string"),
        ([Document("a", text=None)], "documents[0].text", "must be a string"),
        (["a"], "documents[0]", "must be a Document"),
        ([Document(f"m{i}") for i in range(11)], "documents", "has 11 documents, the limit is 10"),
    ],
)
def test_bad_documents(make_indexer, batch, field, fragment):
    ix = make_indexer(max_id_length=64, max_batch=10)
    ix.create_collection("c", [VariantSpec("fast", 4)])
    vecs = {"fast": unit(np.random.default_rng(0), len(batch), 4)}
    _raises(InvalidArgument, field, fragment, ix.upsert, "c", batch, vecs)
    assert ix.get_collection("c").documents == 0
    assert ix.store.max_seq() == 0


@pytest.mark.parametrize(
    "kwargs, exc, field, fragment",
    [
        ({"k": 0}, InvalidArgument, "k", "at least 1, got 0"),
        ({"k": -3}, InvalidArgument, "k", "at least 1"),
        ({"k": 51}, InvalidArgument, "k", "between 1 and 50, got 51"),
        ({"k": 2.5}, InvalidArgument, "k", "must be an integer"),
        ({"offset": -1}, InvalidArgument, "offset", "at least 0"),
        ({"mode": "middle"}, InvalidArgument, "mode", "nearest, farthest, lexical, hybrid"),
        ({"mode": "farthest", "hybrid": HybridParams()}, InvalidArgument, "hybrid", "not to mode farthest"),
        ({"mode": "lexical"}, InvalidArgument, "texts", "list of query texts"),
        ({"mode": "hybrid", "hybrid": HybridParams(lexical_candidates=20000)}, InvalidArgument,
         "hybrid.lexical_candidates", "at most"),
        ({"variant": "medium"}, NotFound, "variant", "no variant 'medium'"),
        ({"collection": "nope"}, NotFound, "collection", "no collection named 'nope'"),
        ({"filter": {"lang": 1}}, InvalidArgument, "filter.lang", "must be a string"),
        ({"filter": ["lang"]}, InvalidArgument, "filter", "must be a dict"),
        ({"params": {"ef": 3}}, InvalidArgument, "params.ef", "unknown search parameter"),
        ({"params": {"efSearch": 0}}, InvalidArgument, "params.efSearch", "between 1"),
        ({"min_score": float("nan")}, InvalidArgument, "min_score", "finite"),
        ({"queries": np.zeros((1, 4))}, InvalidArgument, "queries[0]", "zero vector"),
        ({"queries": np.full((2, 4), np.nan)}, InvalidArgument, "queries[0]", "NaN or inf"),
        ({"queries": np.ones((1, 5))}, InvalidArgument, "queries", "width 5, the variant's dim is 4"),
    ],
)
def test_bad_search_arguments(make_indexer, kwargs, exc, field, fragment):
    ix = make_indexer(max_k=50)
    ix.create_collection("c", [VariantSpec("fast", 4)])
    ix.upsert("c", docs(3), {"fast": unit(np.random.default_rng(0), 3, 4)})
    call = {"collection": "c", "queries": np.ones((1, 4)), "k": 2, **kwargs}
    collection, queries = call.pop("collection"), call.pop("queries")
    _raises(exc, field, fragment, lambda: ix.search(collection, SearchRequest(**call), queries))


def test_filter_on_a_key_no_document_has_is_empty_not_an_error(two):
    assert two.search("c", SearchRequest(k=3, filter={"nobody": "has"}), np.ones((2, 4))) == [[], []]


def test_bad_delete_and_get_ids(make_indexer):
    ix = make_indexer(max_id_length=8)
    ix.create_collection("c", [VariantSpec("fast", 4)])
    _raises(InvalidArgument, "ids[1]", "is empty", ix.delete, "c", ["a", ""])
    _raises(InvalidArgument, "ids[0]", "9 characters long, the limit is 8", ix.delete, "c", ["x" * 9])
    _raises(InvalidArgument, "ids[2]", "duplicates ids[0]", ix.get, "c", ["a", "b", "a"])
    _raises(InvalidArgument, "ids", "list of strings", ix.delete, "c", "abc")
    _raises(NotFound, "collection", "no collection named 'zz'", ix.delete, "zz", ["a"])


def test_bad_collections(ix):
    _raises(InvalidArgument, "name", "1-64 characters", ix.create_collection, "no/slash", [VariantSpec("v", 4)])
    _raises(InvalidArgument, "variants", "at least one", ix.create_collection, "c", [])
    _raises(InvalidArgument, "variants[1].name", "duplicate variant name 'v'", ix.create_collection, "c", [VariantSpec("v", 4), VariantSpec("v", 8)])
    _raises(InvalidArgument, "variants[0].dim", "1..65536", ix.create_collection, "c", [VariantSpec("v", 0)])
    _raises(InvalidArgument, "variants[0].index.kind", "unsupported index kind 'Bogus99'", ix.create_collection, "c", [VariantSpec("v", 4, IndexSpec("Bogus99"))])
    _raises(InvalidArgument, "variants[0].index.params.nlits", "unknown for index kind 'ivf'", ix.create_collection, "c", [VariantSpec("v", 4, IndexSpec("ivf", {"nlits": 4}))])
    _raises(InvalidArgument, "variants[0].index.params.M", "must be between 2 and 128", ix.create_collection, "c", [VariantSpec("v", 4, IndexSpec("hnsw", {"M": 0}))])
    _raises(InvalidArgument, "default_variant", "'w' is not one of the variants", ix.create_collection, "c", [VariantSpec("v", 4)], "w")
    assert ix.list_collections() == []
    ix.create_collection("c", [VariantSpec("v", 4)])
    _raises(AlreadyExists, "name", "already exists", ix.create_collection, "c", [VariantSpec("v", 4)])
    _raises(AlreadyExists, "spec.name", "already has a variant 'v'", ix.add_variant, "c", VariantSpec("v", 4))
    _raises(NotFound, "name", "no variant 'w'", ix.set_default_variant, "c", "w")
    _raises(NotFound, "name", "no collection named 'd'", ix.get_collection, "d")


def test_config_rejects_unknown_and_bad_keys():
    with pytest.raises(ConfigError) as info:
        IndexerConfig.from_dict({"max_k": 5, "max_kk": 6}, prefix="indexer.")
    assert info.value.field == "indexer.max_kk" and "unknown key" in info.value.message
    with pytest.raises(ConfigError) as info:
        IndexerConfig(max_k=0)
    assert info.value.field == "max_k"
    assert IndexerConfig.from_dict({"max_k": 5}).max_k == 5
