"""Restart, snapshot replay, and clean rebuilds from SQLite."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from ixhelpers import SPECS, docs, unit
from ranksearch.errors import FailedPrecondition
from ranksearch.indexer import Document, Indexer, SearchRequest, VariantSpec
from ranksearch.indexer.store import DB_NAME, SCHEMA_VERSION

KINDS = ("flat", "hnsw", "ivf")


def _fill(ix: Indexer, n: int = 400, seed: int = 0) -> np.ndarray:
    x = unit(np.random.default_rng(seed), n, 8)
    ix.create_collection("c", [VariantSpec(k, 8, SPECS[k]) for k in KINDS], default_variant="hnsw")
    ix.upsert("c", docs(n, meta=lambda i: {"p": str(i % 3)}), {k: x for k in KINDS})
    return x


def _crash(ix: Indexer) -> None:
    """Drop an open indexer without its final snapshot, as a killed process would."""
    ix._stop.set()
    ix._release()


def _assert_state(ix: Indexer, x: np.ndarray, live: set[str]) -> None:
    assert ix.verify()["ok"], ix.verify()
    assert ix.get_collection("c").documents == len(live)
    for kind in KINDS:
        ids = [h.id for h in ix.search("c", SearchRequest(variant=kind, k=len(live) + 5, params={"efSearch": 512, "nprobe": 8}), x[:1])[0]]
        assert set(ids) == live and len(ids) == len(live)


def test_restart_keeps_everything(make_indexer, tmp_path):
    ix = make_indexer()
    x = _fill(ix)
    ix.upsert("c", [Document("d1", "new", {"p": "z"})], {k: x[2:3] for k in KINDS})
    ix.delete("c", ["d3"])
    ix.close()
    ix = make_indexer()
    assert all(r.startswith("snapshot") for r in ix.recovery.values()), ix.recovery
    info = ix.get_collection("c")
    assert info.default_variant == "hnsw" and [v.name for v in info.variants] == list(KINDS)
    assert ix.get("c", ["d1", "d3"]) == [Document("d1", "new", {"p": "z"}, 2)]
    assert ix.search("c", SearchRequest(variant="flat", k=2, filter={"p": "z"}), x[2:3])[0][0].id == "d1"
    _assert_state(ix, x, {f"d{i}" for i in range(400)} - {"d3"})


def test_changes_after_the_snapshot_are_replayed(make_indexer):
    ix = make_indexer()
    x = _fill(ix)
    ix.snapshot()
    ix.upsert("c", [Document("d1", "new")], {k: x[2:3] for k in KINDS})  # replace
    ix.upsert("c", docs(5, "extra"), {k: x[:5] for k in KINDS})  # add
    ix.delete("c", ["d3", "d4"])  # delete
    _crash(ix)
    ix = make_indexer()
    assert ix.recovery["c/hnsw"] == "snapshot seq 400: replayed 6 added, 3 removed"
    live = {f"d{i}" for i in range(400)} - {"d3", "d4"} | {f"extra{i}" for i in range(5)}
    _assert_state(ix, x, live)
    assert ix.get("c", ["d1"])[0].text == "new"


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip-byte", "garbage"])
def test_damaged_snapshot_leads_to_clean_rebuild(make_indexer, damage, caplog):
    ix = make_indexer()
    x = _fill(ix)
    ix.close()
    snap = ix.data_dir / "snapshots" / "c" / "hnsw.snap"
    data = snap.read_bytes()
    if damage == "delete":
        snap.unlink()
    elif damage == "truncate":
        snap.write_bytes(data[: len(data) // 2])
    elif damage == "flip-byte":
        snap.write_bytes(data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:])
    else:
        snap.write_bytes(b"not a snapshot at all")
    caplog.set_level("WARNING", logger="ranksearch.indexer")
    ix = make_indexer()
    assert ix.recovery["c/hnsw"].startswith("rebuilt:"), ix.recovery
    assert ix.recovery["c/flat"].startswith("snapshot")
    assert "rebuilding c/hnsw from SQLite" in caplog.text
    _assert_state(ix, x, {f"d{i}" for i in range(400)})
    ix.close()
    ix = make_indexer()  # the rebuild was snapshotted: next start loads it
    assert ix.recovery["c/hnsw"].startswith("snapshot"), ix.recovery


def test_leftover_temp_file_is_removed(make_indexer):
    ix = make_indexer()
    _fill(ix, 20)
    ix.close()
    tmp = ix.data_dir / "snapshots" / "c" / ".tmp-flat.snap.999"
    tmp.write_bytes(b"half")
    make_indexer()
    assert not tmp.exists()


def test_one_process_per_data_dir(make_indexer, tmp_path):
    make_indexer()
    with pytest.raises(FailedPrecondition) as info:
        Indexer(tmp_path / "data").open()
    assert info.value.field == "data_dir" and "in use by another process" in info.value.message


def test_newer_schema_is_refused(make_indexer, tmp_path):
    make_indexer().close()
    conn = sqlite3.connect(tmp_path / "data" / DB_NAME)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(FailedPrecondition) as info:
        Indexer(tmp_path / "data").open()
    assert "schema version 99 is newer" in info.value.message
    Indexer(tmp_path / "data")  # nothing held after the failed open
    conn = sqlite3.connect(tmp_path / "data" / DB_NAME)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    conn.commit()
    conn.close()
    make_indexer().close()


def test_periodic_snapshot_thread(make_indexer):
    import time

    ix = make_indexer(snapshot_interval_s=0.05)
    _fill(ix, 10)
    deadline = time.monotonic() + 10
    while ix.stats()["collections"]["c"]["variants"]["flat"]["snapshot_seq"] != 10:
        assert time.monotonic() < deadline, "no periodic snapshot within 10 s"
        time.sleep(0.02)


def test_rebuild_operation(make_indexer):
    ix = make_indexer()
    x = _fill(ix, 100)
    ix.rebuild()
    ix.rebuild("c")
    _assert_state(ix, x, {f"d{i}" for i in range(100)})
