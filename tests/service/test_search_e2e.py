"""End to end through a real server: tiny real encoder, real SQLite, real FAISS."""
from __future__ import annotations

import numpy as np
import pytest

from ranksearch.client import Document, Variant

TEXTS = {
    "read": "read a file line by line",
    "write": "open a text file for writing",
    "args": "parse command line arguments",
    "sort": "sort a list of numbers",
    "hash": "compute a sha256 hash",
    "json": "serialise an object to json",
    "regex": "match a regular expression",
    "gzip": "compress data with gzip",
}


def _load(client, collection="docs"):
    docs = [Document(i, t, {"kind": "io" if i in ("read", "write", "gzip") else "other", "n": str(n)})
            for n, (i, t) in enumerate(TEXTS.items())]
    assert client.upsert(collection, docs) == len(docs)
    return docs


def test_each_document_is_top1_for_its_own_text(server):
    client = server.client()
    _load(client)
    for doc_id, text in TEXTS.items():
        result = client.search(text, k=3, include_text=True)
        assert result.variant == "default"
        assert result.hits[0].id == doc_id
        assert result.hits[0].text == text
        assert result.hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert client.search("read a file line by line").hits[0].text == ""  # include_text off


def test_farthest_equals_brute_force_over_embed_vectors(server):
    client = server.client()
    _load(client)
    ids = list(TEXTS)
    vectors, variant = client.embed([TEXTS[i] for i in ids], collection="docs")
    assert variant == "default" and vectors.shape[0] == len(ids)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for query in ("sort numbers quickly", "open a file"):
        (q,), _ = client.embed([query])
        scores = vectors @ q  # (n,)
        want = [ids[j] for j in np.argsort(scores, kind="stable")[:5]]
        got = client.search(query, k=5, farthest=True)
        assert [h.id for h in got.hits] == want
        np.testing.assert_allclose([h.score for h in got.hits], np.sort(scores)[:5], atol=1e-5)
        nearest = client.search(query, k=5)
        assert [h.id for h in nearest.hits] == [ids[j] for j in np.argsort(-scores, kind="stable")[:5]]


def test_delete_and_replace_are_visible_immediately(server):
    client = server.client()
    _load(client)
    assert client.delete("docs", ["read", "missing"]) == 1
    assert "read" not in [h.id for h in client.search(TEXTS["read"], k=8).hits]
    assert client.get("docs", ["read"]) == []
    client.upsert("docs", [Document("sort", TEXTS["read"], {"kind": "replaced"})])
    hit = client.search(TEXTS["read"], k=1, include_text=True).hits[0]
    assert (hit.id, hit.text, hit.metadata) == ("sort", TEXTS["read"], {"kind": "replaced"})
    assert client.get("docs", ["sort"])[0].metadata == {"kind": "replaced"}


def test_filter_min_score_offset_and_batch_search(server):
    client = server.client()
    _load(client)
    io = client.search("a file", k=8, filter={"kind": "io"})
    assert {h.id for h in io.hits} == {"read", "write", "gzip"}
    assert client.search("a file", k=8, filter={"kind": "nothing"}).hits == []
    full = client.search("a file", k=8).hits
    assert [h.id for h in client.search("a file", k=3, offset=2).hits] == [h.id for h in full[2:5]]
    threshold = full[3].score
    kept = client.search("a file", k=8, min_score=threshold).hits
    assert [h.id for h in kept] == [h.id for h in full if h.score >= threshold]
    far = client.search("a file", k=8, farthest=True, min_score=threshold).hits
    assert all(h.score <= threshold + 1e-6 for h in far) and far
    batch = client.batch_search([TEXTS["hash"], TEXTS["json"]], k=2)
    assert [r.hits[0].id for r in batch] == ["hash", "json"]


def test_restart_keeps_documents_and_collections(make_server, tmp_path):
    data = tmp_path / "persist"
    first = make_server(data_dir=data)
    client = first.client()
    client.create_collection("docs")
    _load(client)
    client.delete("docs", ["gzip"])
    before = client.search(TEXTS["json"], k=8)
    first.__exit__(None, None, None)

    second = make_server(data_dir=data)
    client = second.client()
    assert [c.name for c in client.list_collections().collections] == ["docs"]
    after = client.search(TEXTS["json"], k=8)
    assert [h.id for h in after.hits] == [h.id for h in before.hits]
    assert "gzip" not in [h.id for h in after.hits]
    assert client.get("docs", ["json"])[0].text == TEXTS["json"]


def test_collections_and_variants(server, tiny_model):
    client = server.client()
    info = client.create_collection("ab", [
        Variant("a", weight=1.0), Variant("b", model=str(tiny_model), index_kind="hnsw",
                                          index_params={"M": 8}, weight=1.0)], default_variant="a")
    assert [v.name for v in info.variants] == ["a", "b"]
    assert info.default_variant == "a"
    _load(client, "ab")
    assert client.search(TEXTS["sort"], collection="ab", variant="b").variant == "b"
    assert client.search(TEXTS["sort"], collection="ab", variant="b").hits[0].id == "sort"
    # A/B split: deterministic per routing key, and both variants get traffic
    chosen = {key: client.search("x y", collection="ab", routing_key=key).variant
              for key in (f"user-{i}" for i in range(40))}
    assert set(chosen.values()) == {"a", "b"}
    again = {key: client.search("x y", collection="ab", routing_key=key).variant for key in chosen}
    assert again == chosen
    names = [c.name for c in client.list_collections().collections]
    assert names == ["ab", "docs"]
    stats = {c.name: c for c in client.stats().collections}
    assert stats["ab"].documents == len(TEXTS)
    assert {v.name: v.index_kind for v in stats["ab"].variants} == {"a": "flat", "b": "hnsw"}
    assert {v.name: (v.index_state, v.rebuilding) for v in stats["ab"].variants} == \
        {"a": ("flat", ""), "b": ("hnsw", "")}
    assert all(list(v.rank) == [16, 16] and v.parameters > 0 for v in stats["ab"].variants)
    assert client.delete_collection("ab")
    assert [c.name for c in client.list_collections().collections] == ["docs"]
