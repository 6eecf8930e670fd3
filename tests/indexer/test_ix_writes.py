"""Upsert, replace, delete, variants and collections, seen by search at once."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from ixhelpers import SPECS, docs, unit
from ranksearch.indexer import Document, IndexSpec, LexicalConfig, SearchRequest, VariantSpec
from ranksearch.indexer.lexical import analyse


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_replace_and_delete_are_visible_immediately(ix, kind):
    rng = np.random.default_rng(5)
    x = unit(rng, 200, 8)
    ix.create_collection("c", [VariantSpec("v", 8, SPECS[kind])])
    ix.upsert("c", docs(200, meta=lambda i: {"g": str(i % 2)}), {"v": x})
    target = unit(rng, 1, 8)
    # replace d5: new text, metadata and vector; the old vector must be gone
    ix.upsert("c", [Document("d5", "replaced", {"g": "new"})], {"v": target})
    top = ix.search("c", SearchRequest(k=1), target)[0][0]
    assert (top.id, top.text, top.metadata) == ("d5", "replaced", {"g": "new"})
    assert top.score == pytest.approx(1.0, abs=1e-5)
    old = ix.search("c", SearchRequest(k=200, params={"efSearch": 256, "nprobe": 8}), x[5:6])[0]
    assert [h.id for h in old].count("d5") == 1  # once, with its new vector
    assert ix.get("c", ["d5"])[0].version == 2 and ix.get("c", ["d4"])[0].version == 1
    assert ix.search("c", SearchRequest(k=5, filter={"g": "1"}), target)[0][0].id != "d5"
    # delete: gone from nearest, farthest, filters and get
    assert ix.delete("c", ["d5", "d7", "missing"]) == 2
    for mode in ("nearest", "farthest"):
        ids = {h.id for row in ix.search("c", SearchRequest(k=200, mode=mode), np.vstack([target, x[7:8]])) for h in row}
        assert not ids & {"d5", "d7"}
        assert len(ids) == 198
    assert ix.search("c", SearchRequest(k=5, filter={"g": "new"}), target) == [[]]
    assert ix.get("c", ["d5", "d6", "d7"]) == [Document("d6", "text d6", {"g": "0"}, 1)]
    assert ix.get_collection("c").documents == 198
    assert ix.verify()["ok"]


def test_hnsw_tombstones_are_compacted(make_indexer):
    ix = make_indexer(tombstone_rebuild_ratio=0.1)
    rng = np.random.default_rng(2)
    x = unit(rng, 100, 8)
    ix.create_collection("c", [VariantSpec("v", 8, IndexSpec("hnsw"))])
    ix.upsert("c", docs(100), {"v": x})
    ix.delete("c", [f"d{i}" for i in range(5)])
    assert ix.stats()["collections"]["c"]["variants"]["v"]["tombstones"] == 5
    ix.delete("c", [f"d{i}" for i in range(5, 12)])  # 12 > 10% of 100: rebuilt
    v = ix.stats()["collections"]["c"]["variants"]["v"]
    assert v["tombstones"] == 0 and v["vectors"] == 88
    assert len(ix.search("c", SearchRequest(k=100), x[:1])[0]) == 88
    assert ix.verify()["ok"]


def test_variants_backfill_and_default_switch(ix):
    rng = np.random.default_rng(4)
    a, b = unit(rng, 20, 4), unit(rng, 20, 6)
    ix.create_collection("c", [VariantSpec("a", 4, encoder="/models/a")])
    ix.upsert("c", docs(20), {"a": a})
    ix.add_variant("c", VariantSpec("b", 6, IndexSpec("hnsw"), encoder="/models/b"))
    assert ix.search("c", SearchRequest(variant="b", k=3), b[:1]) == [[]]  # not filled yet
    assert not ix.verify()["ok"]  # reports the missing vectors
    assert ix.put_vectors("c", "b", [f"d{i}" for i in range(20)] , b) == 20
    assert ix.search("c", SearchRequest(variant="b", k=1), b[3:4])[0][0].id == "d3"
    assert ix.verify()["ok"]
    ix.set_default_variant("c", "b")
    info = ix.get_collection("c")
    assert info.default_variant == "b" and [v.encoder for v in info.variants] == ["/models/a", "/models/b"]
    assert ix.search("c", SearchRequest(k=1), b[7:8])[0][0].id == "d7"
    # every upsert now needs both variants
    with pytest.raises(Exception) as exc:
        ix.upsert("c", docs(1, "n"), {"a": a[:1]})
    assert "missing variant 'b'" in str(exc.value)


def test_delete_collection(ix):
    ix.create_collection("c", [VariantSpec("v", 4)])
    ix.upsert("c", docs(3), {"v": unit(np.random.default_rng(0), 3, 4)})
    ix.snapshot()
    assert (ix.data_dir / "snapshots" / "c" / "v.snap").exists()
    ix.delete_collection("c")
    assert ix.list_collections() == [] and not (ix.data_dir / "snapshots" / "c").exists()
    ix.create_collection("c", [VariantSpec("v", 4)])
    assert ix.get_collection("c").documents == 0


def test_stats(ix):
    ix.create_collection("c", [VariantSpec("f", 8), VariantSpec("h", 8, IndexSpec("hnsw"))])
    x = unit(np.random.default_rng(0), 10, 8)
    ix.upsert("c", docs(10), {"f": x, "h": x})
    s = ix.stats()
    c = s["collections"]["c"]
    assert c["documents"] == 10 and s["last_seq"] == 10
    assert c["variants"]["f"]["index_type"] == "flat" and c["variants"]["f"]["size_bytes"] == 10 * (32 + 16)
    assert c["variants"]["h"]["size_bytes"] > c["variants"]["f"]["size_bytes"]
    assert c["variants"]["h"]["snapshot_seq"] is None
    ix.snapshot()
    h = ix.stats()["collections"]["c"]["variants"]["h"]
    assert h["snapshot_seq"] == 10 and 0 <= h["snapshot_age_s"] < 60 and not h["changed_since_snapshot"]


def test_searches_never_see_half_a_batch(ix):
    """Each batch replaces all 50 documents with one 'generation' tag; concurrent
    searches must always see a single generation."""
    n, d = 50, 8
    rng = np.random.default_rng(9)
    ix.create_collection("c", [VariantSpec("v", d), VariantSpec("h", d, IndexSpec("hnsw"))])
    x = unit(rng, n, d)
    ix.upsert("c", [Document(f"d{i}", "0:text", {"gen": "0"}) for i in range(n)], {"v": x, "h": x})
    stop = threading.Event()
    seen_mixed: list[set] = []
    errors: list[BaseException] = []

    def reader(variant: str) -> None:
        try:
            while not stop.is_set():
                for row in ix.search("c", SearchRequest(variant=variant, k=n), x[:2]):
                    gens = {h.metadata["gen"] for h in row} | {h.text.split(":")[0] for h in row}
                    if len(gens) != 1 or len(row) != n:
                        seen_mixed.append(gens)
        except BaseException as exc:  # surface in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(v,)) for v in ("v", "h", "v")]
    for t in threads:
        t.start()
    for gen in range(1, 15):
        batch = [Document(f"d{i}", f"{gen}:text", {"gen": str(gen)}) for i in range(n)]
        ix.upsert("c", batch, {"v": x, "h": x})
    stop.set()
    for t in threads:
        t.join()
    assert not errors and not seen_mixed


def test_search_when_sqlite_is_ahead_of_memory(ix):
    """Between a batch's commit and its in-memory apply, SQLite is one batch ahead.
    A search that hits a document whose text row is gone retries; if the state stays
    like that it serves the hits it has with empty texts instead of failing."""
    x = unit(np.random.default_rng(0), 3, 4)
    ix.create_collection("c", [VariantSpec("v", 4)])
    ix.upsert("c", docs(3), {"v": x})
    ix.store.write_batch("c", [Document("d0", "committed, not applied")], {"v": x[:1]},
                         [analyse(LexicalConfig(), "committed, not applied", {})])
    hits = ix.search("c", SearchRequest(k=3), x[:1])[0]
    assert [(h.id, h.text) for h in hits][0] == ("d0", "")
    assert {h.text for h in hits[1:]} == {"text d1", "text d2"}
