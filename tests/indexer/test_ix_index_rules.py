"""Index configurations (issue 9 items 1, 2 and 4 at the indexer level): only the
supported kinds and ranges reach FAISS, each of them works end to end under the
inner-product metric, a stored configuration that is no longer supported takes only
its own collection out of service, and a write that committed is never reported
as failed."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np

from ranksearch.indexer.request import SearchRequest
import pytest

from ranksearch.errors import FailedPrecondition, InvalidArgument
from ranksearch.indexer import Document, Indexer, IndexerConfig, IndexSpec, VariantSpec
from ranksearch.indexer.faiss_index import VariantIndex
from ranksearch.indexer.index_rules import KINDS, check_index
from ranksearch.indexer.store import DB_NAME

D = 16

#: one example configuration per supported kind (every entry of index_rules.KINDS)
EXAMPLES = {
    "flat": IndexSpec("flat"),
    "hnsw": IndexSpec("hnsw", {"M": 8, "efConstruction": 40, "efSearch": 32}),
    "ivf": IndexSpec("ivf", {"nlist": 4, "nprobe": 4, "train_min": 64}),
    "IVF<nlist>,Flat": IndexSpec("IVF4,Flat", {"nprobe": 4, "train_min": 64}),
    "IVF<nlist>,SQ8": IndexSpec("IVF4,SQ8", {"nprobe": 4, "train_min": 64}),
    "IVF<nlist>,SQfp16": IndexSpec("IVF4,SQfp16", {"nprobe": 4, "train_min": 64}),
    "HNSW<M>": IndexSpec("HNSW8", {"efSearch": 32}),
}

#: the reproducers of issue 9 item 1 and the field each must be rejected on
REPRODUCERS = [
    (IndexSpec("hnsw", {"M": 1}), "variants[0].index.params.M"),  # SIGSEGV on the first upsert
    (IndexSpec("HNSW0"), "variants[0].index.kind (M)"),  # SIGABRT on the second upsert
    (IndexSpec("hnsw", {"M": 2**31}), "variants[0].index.params.M"),  # stored, then TypeError at start
    (IndexSpec("hnsw", {"M": 2**40}), "variants[0].index.params.M"),
    (IndexSpec("hnsw", {"efSearch": 2**31}), "variants[0].index.params.efSearch"),  # OverflowError per search
    (IndexSpec("NSG32,Flat"), "variants[0].index.kind"),  # INTERNAL on upsert (after committing)
    (IndexSpec("HNSW999999999"), "variants[0].index.kind (M)"),  # std::bad_alloc
]


def unit(rng, n: int) -> np.ndarray:
    x = rng.standard_normal((n, D)).astype(np.float32)  # (n, D)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_every_supported_kind_has_an_example():
    assert sorted(EXAMPLES) == sorted(k.name for k in KINDS)


@pytest.mark.parametrize("kind", list(EXAMPLES))
def test_every_supported_kind_serves_nearest_farthest_delete_and_restart(make_indexer, kind):
    """Every kind the rules accept, tested with the inner-product metric: trained
    (IVF kinds after train_min vectors), nearest finds each vector itself, farthest
    is exact, deletes disappear, a snapshot loads back after a restart."""
    ix = make_indexer()
    ix.create_collection("c", [VariantSpec("v", D, EXAMPLES[kind])])
    rng = np.random.default_rng(1)
    x = unit(rng, 120)
    ix.upsert("c", [Document(f"d{i}") for i in range(120)], {"v": x})
    assert ix.verify()["ok"], ix.verify()
    hits = ix.search("c", SearchRequest(variant="v", k=3, params={"exact": False}, include_text=False), x[:5])
    assert [h[0].id for h in hits] == [f"d{i}" for i in range(5)]
    far = ix.search("c", SearchRequest(variant="v", k=1, mode="farthest", include_text=False), x[:1])[0][0]
    assert far.id == f"d{int(np.argmin(x @ x[0]))}"
    ix.delete("c", ["d0", "d1"])
    assert ix.search("c", SearchRequest(variant="v", k=1, include_text=False), x[:1])[0][0].id != "d0"
    ix.close()
    again = make_indexer()
    assert again.recovery["c/v"].startswith("snapshot")
    assert again.search("c", SearchRequest(variant="v", k=1, include_text=False), x[2:3])[0][0].id == "d2"


@pytest.mark.parametrize("spec,field", REPRODUCERS, ids=[f"{s.kind}{s.params}" for s, _ in REPRODUCERS])
def test_issue_reproducers_are_rejected_before_anything_is_stored(make_indexer, spec, field):
    ix = make_indexer()
    with pytest.raises(InvalidArgument) as info:
        ix.create_collection("x", [VariantSpec("v", D, spec)])
    assert info.value.field == field, str(info.value)
    assert ix.list_collections() == []
    ix.close()
    assert make_indexer().list_collections() == []  # nothing reached SQLite


REPRODUCER_SCRIPT = textwrap.dedent("""
    import sys, tempfile
    import numpy as np
    from ranksearch.errors import InvalidArgument
    from ranksearch.indexer import Document, Indexer, IndexSpec, VariantSpec
    rng = np.random.default_rng(0)
    for kind, params in [("hnsw", {"M": 1}), ("HNSW0", {}), ("hnsw", {"M": 2**31}),
                         ("hnsw", {"efSearch": 2**31}), ("NSG32,Flat", {}), ("HNSW999999999", {})]:
        print(kind, params, flush=True)
        data = tempfile.mkdtemp()
        with Indexer(data) as ix:
            try:
                ix.create_collection("x", [VariantSpec("v", 8, IndexSpec(kind, params))])
            except InvalidArgument as exc:
                print("  rejected:", exc.field, flush=True)
                continue
            for i in range(2):
                ix.upsert("x", [Document(f"a{i}", "hi")], {"v": rng.standard_normal((1, 8))})
            ix.search("x", SearchRequest(k=2), rng.standard_normal((1, 8)))
        with Indexer(data) as ix:  # the restart that crash-looped
            ix.search("x", SearchRequest(k=2), rng.standard_normal((1, 8)))
        print("  accepted and served", flush=True)
""")


def test_issue_reproducers_do_not_crash_the_process(tmp_path):
    """The reproducers end to end in a child process, so a native crash (SIGSEGV,
    SIGABRT, bad_alloc) fails this test instead of killing pytest. Before the fix the
    child died on the first case."""
    proc = subprocess.run([sys.executable, "-c", REPRODUCER_SCRIPT], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, f"child died with {proc.returncode}:\n{proc.stdout}\n{proc.stderr[-2000:]}"
    assert proc.stdout.count("rejected:") == 6, proc.stdout


@pytest.mark.parametrize("kind,params,field,words", [
    ("hnsw", {"M": 129}, "i.params.M", "between 2 and 128"),
    ("hnsw", {"efConstruction": 0}, "i.params.efConstruction", "between 1 and 4096"),
    ("hnsw", {"M": True}, "i.params.M", "must be an integer"),
    ("hnsw", {"nlist": 4}, "i.params.nlist", "unknown for index kind 'hnsw'"),
    ("ivf", {"nlist": 65537}, "i.params.nlist", "between 1 and 65536"),
    ("ivf", {"nlist": 64, "train_min": 10}, "i.params.train_min", "at least nlist (64)"),
    ("IVF100000,Flat", {}, "i.kind (nlist)", "between 1 and 65536"),
    ("IVF64,SQ8", {"train_min": 8}, "i.params.train_min", "at least nlist (64)"),
    ("HNSW32", {"nprobe": 2}, "i.params.nprobe", "unknown for index kind 'HNSW<M>'"),
    ("IVF64,PQ8", {}, "i.kind", "unsupported index kind 'IVF64,PQ8'"),
    ("IDMap,Flat", {}, "i.kind", "unsupported index kind"),
    ("", {}, "i.kind", "must be one of flat, hnsw, ivf"),
    ("flat", "M=4", "i.params", "must be a mapping"),
])
def test_out_of_range_configurations_name_the_field(kind, params, field, words):
    with pytest.raises(InvalidArgument) as info:
        check_index(kind, params, "i")
    assert (info.value.field, words in info.value.message) == (field, True), str(info.value)


def test_search_time_overrides_are_bounded(make_indexer):
    ix = make_indexer()
    ix.create_collection("c", [VariantSpec("v", D, IndexSpec("hnsw"))])
    x = unit(np.random.default_rng(2), 4)
    ix.upsert("c", [Document(f"d{i}") for i in range(4)], {"v": x})
    for params, field in [({"efSearch": 2**31}, "params.efSearch"), ({"nprobe": 2**40}, "params.nprobe"),
                          ({"efSearch": 0}, "params.efSearch")]:
        with pytest.raises(InvalidArgument) as info:
            ix.search("c", SearchRequest(variant="v", k=2, params=params), x[:1])
        assert info.value.field == field
    assert ix.search("c", SearchRequest(variant="v", k=1, params={"efSearch": 4096}), x[:1])[0][0].id == "d0"


def plant_config(data_dir, collection: str, kind: str, params: dict) -> None:
    """Write an index configuration straight into the SQLite store, as an older
    version (or a hand edit) could have stored it."""
    conn = sqlite3.connect(data_dir / DB_NAME)
    with conn:
        conn.execute("UPDATE variants SET index_kind = ?, index_params = ? WHERE collection = ?",
                     (kind, json.dumps(params), collection))
    conn.close()


def test_a_stored_unsupported_config_takes_only_its_collection_out_of_service(make_indexer, tmp_path):
    ix = make_indexer()
    x = unit(np.random.default_rng(3), 6)
    for name in ("bad", "good"):
        ix.create_collection(name, [VariantSpec("v", D, IndexSpec("hnsw", {"M": 8}))])
        ix.upsert(name, [Document(f"d{i}") for i in range(6)], {"v": x})
    ix.close()
    plant_config(tmp_path / "data", "bad", "hnsw", {"M": 1})  # segfaulted every start before the fix

    ix = make_indexer()
    assert list(ix.unavailable) == ["bad"] and "params.M" in ix.unavailable["bad"]
    assert ix.search("good", SearchRequest(k=1), x[:1])[0][0].id == "d0"
    with pytest.raises(FailedPrecondition) as info:
        ix.search("bad", SearchRequest(k=1), x[:1])
    assert info.value.field == "collection" and "'bad' is unavailable" in info.value.message
    assert "between 2 and 128" in info.value.message
    with pytest.raises(FailedPrecondition):
        ix.upsert("bad", [Document("n")], {"v": x[:1]})
    assert [(c.name, bool(c.unavailable), c.documents) for c in ix.list_collections()] == \
        [("bad", True, 6), ("good", False, 6)]
    verify = ix.verify()
    assert not verify["ok"] and any(p.startswith("bad: unavailable") for p in verify["problems"])
    with pytest.raises(FailedPrecondition):  # its configuration cannot be rebuilt either
        ix.rebuild("bad")
    ix.delete_collection("bad")
    assert ix.unavailable == {} and ix.verify()["ok"]
    ix.close()
    ix = make_indexer()
    assert [c.name for c in ix.list_collections()] == ["good"] and ix.unavailable == {}


def test_a_failed_rebuild_at_open_takes_only_its_collection_out_of_service(make_indexer, tmp_path, monkeypatch):
    """A FAISS exception while a collection is rebuilt from SQLite at start (here a
    corrupt snapshot forces the rebuild, and the rebuild fails); an admin rebuild puts
    it back once the cause is gone."""
    ix = make_indexer()
    x = unit(np.random.default_rng(4), 6)
    for name in ("a", "b"):
        ix.create_collection(name, [VariantSpec("v", D)])
        ix.upsert(name, [Document(f"d{i}") for i in range(6)], {"v": x})
    ix.close()
    snap = tmp_path / "data" / "snapshots" / "a" / "v.snap"
    snap.write_bytes(b"garbage")
    real = VariantIndex.rebuilt

    def failing(self):
        raise RuntimeError("Error in faiss::IndexFlat: simulated")
    monkeypatch.setattr(VariantIndex, "rebuilt", failing)
    ix = make_indexer()
    assert list(ix.unavailable) == ["a"] and "RuntimeError" in ix.unavailable["a"]
    assert ix.search("b", SearchRequest(k=1), x[:1])[0][0].id == "d0"
    monkeypatch.setattr(VariantIndex, "rebuilt", real)
    ix.rebuild("a")
    assert ix.unavailable == {} and ix.search("a", SearchRequest(k=1), x[1:2])[0][0].id == "d1"


def test_a_committed_write_is_never_reported_as_failed(make_indexer, monkeypatch):
    """Issue 9 item 4: with NSG32,Flat an Upsert answered INTERNAL although it had
    committed. Now nothing after the commit raises: a failed in-memory apply is
    repaired from SQLite, and if that fails too the collection goes out of service
    (the write stays durable; Rebuild brings it back)."""
    ix = make_indexer()
    x = unit(np.random.default_rng(5), 3)
    ix.create_collection("c", [VariantSpec("v", D)])
    ix.upsert("c", [Document("a")], {"v": x[:1]})
    real = VariantIndex.add

    def broken(self, ids, vecs):
        raise RuntimeError("Error in faiss::Index::add: simulated")
    monkeypatch.setattr(VariantIndex, "add", broken)
    assert ix.upsert("c", [Document("b")], {"v": x[1:2]}) == 1  # committed: reported as written
    assert list(ix.unavailable) == ["c"]
    with pytest.raises(FailedPrecondition):
        ix.search("c", SearchRequest(k=1), x[:1])
    monkeypatch.setattr(VariantIndex, "add", real)
    ix.rebuild("c")
    assert [h.id for h in ix.search("c", SearchRequest(k=2), x[1:2])[0]] == ["b", "a"]

    calls = []

    def once(self, ids, vecs):  # fails once: the rebuild from SQLite repairs it at once
        if not calls:
            calls.append(1)
            raise RuntimeError("simulated")
        return real(self, ids, vecs)
    monkeypatch.setattr(VariantIndex, "add", once)
    assert ix.upsert("c", [Document("z")], {"v": x[2:3]}) == 1
    assert ix.unavailable == {} and ix.search("c", SearchRequest(k=1), x[2:3])[0][0].id == "z"


def test_unsupported_stored_config_is_never_handed_to_faiss(tmp_path):
    """Opening a data dir whose stored config segfaulted FAISS before the fix, in a
    child process: it must open (and serve the other collection), not crash."""
    data = tmp_path / "d"
    with Indexer(data, IndexerConfig(snapshot_interval_s=0)) as ix:
        for name in ("bad", "good"):
            ix.create_collection(name, [VariantSpec("v", 8, IndexSpec("hnsw", {"M": 8}))])
            ix.upsert(name, [Document("a")], {"v": np.ones((1, 8))})
    plant_config(data, "bad", "HNSW0", {})
    (data / "snapshots" / "bad" / "v.snap").unlink()  # force a rebuild with the planted config
    script = ("import sys; import numpy as np; from ranksearch.indexer import Indexer\n"
              "from ranksearch.indexer.request import SearchRequest\n"
              f"ix = Indexer({str(data)!r}); ix.open()\n"
              "print(sorted(ix.unavailable), ix.search('good', SearchRequest(k=1), np.ones((1, 8)))[0][0].id); ix.close()")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["['bad']", "a"]
