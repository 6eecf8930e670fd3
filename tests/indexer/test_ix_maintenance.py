"""Training, retraining and compaction of main indexes: inline for small indexes, in a
background thread for large ones, catching up with the writes made meanwhile."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from ixhelpers import clustered, docs, in_thread

from ranksearch.indexer import Document, IndexSpec, SearchRequest, VariantSpec
from ranksearch.indexer.faiss_index import VariantIndex

D = 16


def nlist_of(ix, collection: str = "c") -> str:
    return ix.stats()["collections"][collection]["variants"]["v"]["index_type"]


def finds_itself(ix, vectors: dict[str, np.ndarray], nprobe: int = 65536, ef: int = 512) -> None:
    """Every live document is the top hit for its own vector; nothing else is indexed."""
    ids = sorted(vectors)
    for start in range(0, len(ids), 1000):  # max_queries per call
        chunk = ids[start : start + 1000]
        res = ix.search("c", SearchRequest(variant="v", k=1, params={"nprobe": nprobe, "efSearch": ef}, include_text=False), np.stack([vectors[i] for i in chunk]))
        assert [row[0].id for row in res] == chunk
    n = ix.get_collection("c").documents
    assert n == len(ids)
    everything = ix.search("c", SearchRequest(variant="v", k=n + 5, params={"nprobe": nprobe, "efSearch": ef}, include_text=False), vectors[ids[0]][None])[0]
    assert sorted(h.id for h in everything) == ids


@pytest.fixture
def gate(monkeypatch):
    """Holds every VariantIndex.build_main (the lock-free, slow part of a rebuild)
    until the test sets `gate.open`; `gate.entered` is set once one is waiting."""
    real = VariantIndex.build_main
    g = type("Gate", (), {"open": threading.Event(), "entered": threading.Event()})()

    def held(self, ids, vecs):
        g.entered.set()
        assert g.open.wait(60), "test never opened the gate"
        return real(self, ids, vecs)

    monkeypatch.setattr(VariantIndex, "build_main", held)
    return g


def test_ivf_without_nlist_is_retrained_as_its_data_grows(make_indexer):
    ix = make_indexer(max_k=10_000)
    ix.create_collection("c", [VariantSpec("v", D, IndexSpec("ivf", {}))])
    rng = np.random.default_rng(0)
    vectors: dict[str, np.ndarray] = {}
    seen = []
    for b in range(12):  # 500 per batch: train at 1000 (nlist 25), retrain at 2000 (50) and 4000 (100)
        x = clustered(rng, 500, D)
        batch = docs(500, prefix=f"b{b}-")
        ix.upsert("c", batch, {"v": x})
        vectors.update({d.id: x[i] for i, d in enumerate(batch)})
        seen.append(nlist_of(ix))
    assert seen[0].startswith("ivf (untrained")
    assert seen[1:4] == ["ivf (nlist=25)", "ivf (nlist=25)", "ivf (nlist=50)"]
    assert seen[7:] == ["ivf (nlist=100)"] * 5  # 6000 vectors want 150 < 2 x 100: no retrain
    assert VariantIndex.auto_nlist(6000) == 150
    assert ix.verify()["ok"]
    finds_itself(ix, vectors)


def test_ivf_with_a_fixed_nlist_is_trained_once(make_indexer):
    ix = make_indexer()
    ix.create_collection("c", [VariantSpec("v", D, IndexSpec("ivf", {"nlist": 8}))])
    rng = np.random.default_rng(1)
    for b in range(6):
        ix.upsert("c", docs(400, prefix=f"b{b}-"), {"v": clustered(rng, 400, D)})
    assert nlist_of(ix) == "ivf (nlist=8)"


def test_background_training_lets_writes_and_searches_go_on_and_catches_up(make_indexer, gate):
    ix = make_indexer(inline_maintenance_max=0)
    ix.create_collection("c", [VariantSpec("v", D, IndexSpec("ivf", {"nlist": 8, "train_min": 200}))])
    rng = np.random.default_rng(2)
    vectors: dict[str, np.ndarray] = {}

    def put(batch: list[Document]) -> None:
        x = clustered(rng, len(batch), D)
        ix.upsert("c", batch, {"v": x})
        vectors.update({d.id: x[i] for i, d in enumerate(batch)})

    put(docs(150, prefix="a"))
    assert nlist_of(ix).startswith("ivf (untrained") and not gate.entered.is_set()
    put(docs(100, prefix="b"))  # 250 >= train_min: training starts in the background
    assert gate.entered.wait(20)
    assert ix.stats()["collections"]["c"]["variants"]["v"]["rebuilding"] == "training on 250 vectors"

    # while the new index is being built: new documents, replacements, deletes
    in_thread(lambda: put(docs(50, prefix="c")))
    in_thread(lambda: put([Document(f"a{i}", f"replaced a{i}") for i in range(20)]))
    gone = [f"b{i}" for i in range(30)]
    in_thread(lambda: ix.delete("c", gone))
    for doc_id in gone:
        vectors.pop(doc_id)
    hits = in_thread(lambda: ix.search("c", SearchRequest(variant="v", k=1), vectors["c3"][None]))
    assert hits[0][0].id == "c3"  # still answered (exactly: not trained yet)

    gate.open.set()
    assert ix.wait_for_maintenance(60)
    stats = ix.stats()["collections"]["c"]["variants"]["v"]
    assert (stats["index_type"], stats["rebuilding"], stats["vectors"]) == ("ivf (nlist=8)", None, 270)
    report = ix.verify()
    assert report["ok"], report  # the trained index holds exactly the live vectors
    finds_itself(ix, vectors, nprobe=8)
    assert ix.get("c", ["a3"])[0].text == "replaced a3"


def test_background_compaction_keeps_deletes_made_during_it(make_indexer, gate):
    ix = make_indexer(inline_maintenance_max=0, tombstone_rebuild_ratio=0.2)
    ix.create_collection("c", [VariantSpec("v", D, IndexSpec("hnsw", {"M": 8, "efConstruction": 40}))])
    rng = np.random.default_rng(3)
    x = clustered(rng, 300, D)
    batch = docs(300)
    ix.upsert("c", batch, {"v": x})
    vectors = {d.id: x[i] for i, d in enumerate(batch)}
    first = [f"d{i}" for i in range(70)]  # 70 tombstones > 0.2 x 300: compaction starts
    ix.delete("c", first)
    assert gate.entered.wait(20)
    later = [f"d{i}" for i in range(70, 80)]
    in_thread(lambda: ix.delete("c", later))
    for doc_id in first + later:
        vectors.pop(doc_id)
    gate.open.set()
    assert ix.wait_for_maintenance(60)
    stats = ix.stats()["collections"]["c"]["variants"]["v"]
    assert stats["tombstones"] == 10  # only the deletes made while the graph was built
    report = ix.verify()
    assert report["ok"], report
    finds_itself(ix, vectors)


def test_close_waits_for_a_background_rebuild_and_snapshots_its_result(make_indexer, gate):
    ix = make_indexer(sub="data", inline_maintenance_max=0)
    ix.create_collection("c", [VariantSpec("v", D, IndexSpec("ivf", {"nlist": 4, "train_min": 100}))])
    rng = np.random.default_rng(4)
    x = clustered(rng, 120, D)
    batch = docs(120)
    ix.upsert("c", batch, {"v": x})
    assert gate.entered.wait(20)
    closer = threading.Thread(target=ix.close, daemon=True)
    closer.start()
    closer.join(0.5)
    assert closer.is_alive()  # a process must not exit while FAISS runs in a thread
    gate.open.set()
    closer.join(30)
    assert not closer.is_alive()
    again = make_indexer(sub="data", inline_maintenance_max=0)
    assert again.recovery["c/v"].startswith("snapshot")
    assert nlist_of(again) == "ivf (nlist=4)"
    assert again.stats()["collections"]["c"]["variants"]["v"]["rebuilding"] is None  # trained in the snapshot
    assert again.verify()["ok"]
    finds_itself(again, {d.id: x[i] for i, d in enumerate(batch)}, nprobe=4)


def test_deleting_the_collection_during_a_background_rebuild(make_indexer, gate):
    ix = make_indexer(inline_maintenance_max=0)
    spec = VariantSpec("v", D, IndexSpec("ivf", {"nlist": 4, "train_min": 100}))
    ix.create_collection("c", [spec])
    rng = np.random.default_rng(5)
    ix.upsert("c", docs(120), {"v": clustered(rng, 120, D)})
    assert gate.entered.wait(20)
    in_thread(lambda: ix.delete_collection("c"))
    ix.create_collection("c", [spec])  # same name, new collection: untouched by the old rebuild
    ix.upsert("c", docs(10), {"v": clustered(rng, 10, D)})
    gate.open.set()
    assert ix.wait_for_maintenance(60)
    assert nlist_of(ix).startswith("ivf (untrained")
    assert ix.get_collection("c").documents == 10 and ix.verify()["ok"]


def test_hnsw_grown_insert_by_insert_is_rebuilt_in_one_pass_and_remembers_it(make_indexer):
    ix = make_indexer(sub="grow", hnsw_rebuild_min=100, hnsw_rebuild_growth=2.0)
    ix.create_collection("c", [VariantSpec("v", D, IndexSpec("hnsw", {"M": 8, "efConstruction": 40}))])
    rng = np.random.default_rng(6)
    vectors: dict[str, np.ndarray] = {}
    built = []
    for b in range(9):  # 100 per batch: one-pass rebuilds at 200, 400 and 800 vectors
        x = clustered(rng, 100, D)
        batch = docs(100, prefix=f"b{b}-")
        ix.upsert("c", batch, {"v": x})
        vectors.update({d.id: x[i] for i, d in enumerate(batch)})
        built.append(ix.stats()["collections"]["c"]["variants"]["v"]["main_built_count"])
    assert built == [0, 200, 200, 400, 400, 400, 400, 800, 800]
    assert ix.verify()["ok"]
    finds_itself(ix, vectors)
    ix.close()
    again = make_indexer(sub="grow", hnsw_rebuild_min=100, hnsw_rebuild_growth=2.0)
    assert again.stats()["collections"]["c"]["variants"]["v"]["main_built_count"] == 800  # from the snapshot
    again.upsert("c", docs(50, prefix="x"), {"v": clustered(rng, 50, D)})
    assert again.stats()["collections"]["c"]["variants"]["v"]["main_built_count"] == 800


def test_hnsw_growth_rebuild_can_be_turned_off_and_is_validated(make_indexer):
    from ranksearch.errors import ConfigError
    from ranksearch.indexer import IndexerConfig

    ix = make_indexer(hnsw_rebuild_min=10, hnsw_rebuild_growth=0)
    ix.create_collection("c", [VariantSpec("v", D, IndexSpec("hnsw", {"M": 8}))])
    ix.upsert("c", docs(200), {"v": clustered(np.random.default_rng(7), 200, D)})
    assert ix.stats()["collections"]["c"]["variants"]["v"]["main_built_count"] == 0
    for bad in (1, 0.5, True, "2"):
        with pytest.raises(ConfigError, match="hnsw_rebuild_growth"):
            IndexerConfig(hnsw_rebuild_growth=bad)
