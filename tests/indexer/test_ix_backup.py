"""Online backup during writes, restore, and the indexer's CLI subcommands."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from ixhelpers import unit
from ranksearch.cli import main as cli_main
from ranksearch.errors import FailedPrecondition, NotFound
from ranksearch.indexer import backup, Document, Indexer, IndexerConfig, IndexSpec, restore, SearchRequest, VariantSpec

BATCH = 10


def _writer(ix: Indexer, stop: threading.Event, done: list[int]) -> None:
    rng = np.random.default_rng(0)
    b = 0
    while not stop.is_set() or b < 3:
        docs = [Document(f"b{b}-{j}", f"batch {b}", {"batch": str(b)}) for j in range(BATCH)]
        x = unit(rng, BATCH, 8)
        ix.upsert("c", docs, {"f": x, "h": x})
        if b % 4 == 0:
            ix.snapshot()
        done.append(b)
        b += 1


def test_backup_during_writes_restores_a_consistent_prefix(make_indexer, tmp_path):
    ix = make_indexer()
    ix.create_collection("c", [VariantSpec("f", 8), VariantSpec("h", 8, IndexSpec("hnsw"))])
    stop, done = threading.Event(), []
    t = threading.Thread(target=_writer, args=(ix, stop, done))
    t.start()
    try:
        while len(done) < 3:
            stop.wait(0.005)
        manifest = backup(ix.data_dir, tmp_path / "bk")
    finally:
        stop.set()
        t.join()
    written = len(done)
    restore(tmp_path / "bk", tmp_path / "restored")
    with Indexer(tmp_path / "restored", IndexerConfig(snapshot_interval_s=0)) as r:
        assert r.verify()["ok"]
        n = r.get_collection("c").documents
        assert n == manifest["documents"] and n % BATCH == 0
        batches = n // BATCH
        assert 1 <= batches <= written
        # prefix-consistent: exactly batches 0..batches-1, each complete
        want = [f"b{b}-{j}" for b in range(batches) for j in range(BATCH)]
        assert [d.id for d in r.get("c", want)] == want
        assert r.get("c", [f"b{batches}-0"]) == []
        for variant in ("f", "h"):
            hits = r.search("c", SearchRequest(variant=variant, k=n + 5, params={"efSearch": 512}), unit(np.random.default_rng(5), 1, 8))[0]
            assert len(hits) == n == len({h.id for h in hits})


def test_backup_and_restore_refuse_unsafe_targets(make_indexer, tmp_path):
    ix = make_indexer()
    ix.create_collection("c", [VariantSpec("f", 4)])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FailedPrecondition) as info:
        backup(ix.data_dir, tmp_path / "full")
    assert info.value.field == "dest" and "must be an empty directory" in info.value.message
    with pytest.raises(NotFound) as info:
        backup(tmp_path / "full", tmp_path / "bk0")
    assert info.value.field == "data_dir"
    backup(ix.data_dir, tmp_path / "bk")
    with pytest.raises(FailedPrecondition) as info:
        restore(tmp_path / "bk", tmp_path / "full")
    assert info.value.field == "data_dir"
    with pytest.raises(NotFound) as info:
        restore(tmp_path / "full", tmp_path / "new")
    assert info.value.field == "src" and "not a ranksearch backup" in info.value.message
    db = tmp_path / "bk" / "ranksearch.sqlite3"
    db.write_bytes(db.read_bytes()[:-10])
    with pytest.raises(FailedPrecondition) as info:
        restore(tmp_path / "bk", tmp_path / "new")
    assert "does not match the backup manifest" in info.value.message
    assert not (tmp_path / "new").exists()


def test_cli_backup_restore_verify_rebuild(tmp_path, capsys):
    data = tmp_path / "data"
    with Indexer(data, IndexerConfig(snapshot_interval_s=0)) as ix:
        ix.create_collection("c", [VariantSpec("f", 4), VariantSpec("h", 4, IndexSpec("hnsw"))])
        x = unit(np.random.default_rng(0), 30, 4)
        ix.upsert("c", [Document(f"d{i}") for i in range(30)], {"f": x, "h": x})
        # verify refuses a data dir that a running indexer holds
        assert cli_main(["verify", str(data)]) == 2
        assert "in use by another process" in capsys.readouterr().err
        ix.snapshot()
        assert cli_main(["backup", str(data), str(tmp_path / "bk")]) == 0  # online
    assert "backed up 30 documents" in capsys.readouterr().out
    assert cli_main(["restore", str(tmp_path / "bk"), str(tmp_path / "r")]) == 0
    assert "restored 30 documents" in capsys.readouterr().out
    (tmp_path / "r" / "snapshots" / "c" / "h.snap").unlink()
    assert cli_main(["verify", str(tmp_path / "r")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["recovery"]["c/h"].startswith("rebuilt")
    assert report["collections"]["c"]["variants"]["h"]["vectors"] == 30
    assert cli_main(["rebuild", str(tmp_path / "r"), "--collection", "c"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]
    assert cli_main(["rebuild", str(tmp_path / "r"), "--collection", "nope"]) == 2
    assert "no collection named 'nope'" in capsys.readouterr().err
    assert cli_main(["verify", str(tmp_path / "nothing")]) == 2
    assert "holds no ranksearch database" in capsys.readouterr().err
