"""Data written by an earlier data format opens with this build: the store migrates
on open and every document stays searchable (fixtures in tests/deploy/fixtures/,
written by make_upgrade_fixture.py, one folder per shipped format version)."""
from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from ranksearch.errors import FailedPrecondition
from ranksearch.indexer import Indexer, SearchRequest
from ranksearch.indexer.store import DB_NAME, SCHEMA_VERSION
from ranksearch.service.doctor import check_data_format
from ranksearch.service.version import data_dir_version, version_info

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from make_upgrade_fixture import fixture_vectors  # noqa: E402

FIXTURE_DIRS = sorted(FIXTURES.glob("data-v*"))


def test_there_is_a_fixture_for_every_format_up_to_the_current_one():
    for prefix in ("data-v", "service-data-v"):
        versions = sorted(int(p.name.removeprefix(prefix)) for p in FIXTURES.glob(prefix + "*"))
        assert versions == list(range(1, SCHEMA_VERSION + 1)), (
            "run tests/deploy/fixtures/make_upgrade_fixture.py after raising SCHEMA_VERSION")


@pytest.fixture(params=FIXTURE_DIRS, ids=lambda p: p.name)
def old_data(request, tmp_path) -> tuple[Path, dict]:
    data = tmp_path / "data"
    shutil.copytree(request.param, data)
    return data, json.loads((data / "FIXTURE.json").read_text())


def test_old_data_is_migrated_on_open_and_stays_searchable(old_data):
    data, meta = old_data
    assert data_dir_version(data) == meta["schema_version"]
    vecs = fixture_vectors(seed=meta["vector_seed"])  # (n, dim)
    indexer = Indexer(data)
    indexer.open()
    try:
        assert data_dir_version(data) == SCHEMA_VERSION  # migrated during open
        info = indexer.get_collection(meta["collection"])
        assert info.documents == meta["documents"]
        live = [i for i in range(len(vecs)) if f"doc-{i:02d}" not in meta["deleted"]]
        for variant in meta["variants"]:
            hits = indexer.search(meta["collection"], SearchRequest(variant=variant, k=1), vecs[live])
            assert [h[0].id for h in hits] == [f"doc-{i:02d}" for i in live], variant
        # the lexical index: backfilled in the background on upgrade, built inline since
        assert indexer.wait_for_backfill(timeout=60)
        lexical = indexer.stats()["collections"][meta["collection"]]["lexical"]
        assert lexical["ready"] and lexical["documents"] == meta["documents"]
        numbers = [i for i in live if i >= 10]  # the standard analyzer keeps terms of 2+ characters
        hits = indexer.search(meta["collection"], SearchRequest(mode="lexical", k=1),
                              texts=[f"number {i}" for i in numbers])
        assert [h[0].id for h in hits] == [f"doc-{i:02d}" for i in numbers]
        everything = indexer.search(meta["collection"], SearchRequest(mode="hybrid", k=50), vecs[:1],
                                    ["fixture document"])[0]
        assert sorted(h.id for h in everything) == sorted(f"doc-{i:02d}" for i in live)
        got = indexer.get(meta["collection"], ["doc-00", "doc-23"])
        assert [d.id for d in got] == ["doc-00"]
        assert got[0].text == "fixture document number 0"
        assert got[0].metadata == {"parity": "0"}
        report = indexer.verify()
        assert report["ok"], report["problems"]
    finally:
        indexer.close()
    assert check_data_format(data).status == "ok"
    assert version_info(data)["data_format"] == {
        "supported": SCHEMA_VERSION, "data_dir": str(data), "found": SCHEMA_VERSION}


def test_data_from_a_newer_release_is_refused_with_the_versions_named(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(FIXTURE_DIRS[-1], data)
    conn = sqlite3.connect(data / DB_NAME)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    check = check_data_format(data)
    assert check.status == "fail"
    assert f"schema version {SCHEMA_VERSION + 1}, newer than this build supports " \
           f"({SCHEMA_VERSION})" in check.detail
    with pytest.raises(FailedPrecondition) as exc:
        Indexer(data).open()
    assert exc.value.field == "data_dir"
    assert f"schema version {SCHEMA_VERSION + 1} is newer" in exc.value.message


SERVICE_FIXTURES = sorted(FIXTURES.glob("service-data-v*"))


@pytest.mark.parametrize("fixture", SERVICE_FIXTURES, ids=lambda p: p.name)
def test_server_starts_on_old_data_and_finds_documents_by_text(fixture, tmp_path):
    """The whole server (real gRPC on a free loopback port) starts on a data dir
    written by an earlier format, migrates it, and answers text searches."""
    from ranksearch.service.testing import LocalServer, make_test_config

    data = tmp_path / "data"
    shutil.copytree(fixture, data)
    meta = json.loads((data / "FIXTURE.json").read_text())
    assert data_dir_version(data) == meta["schema_version"]
    config = make_test_config(data, data / "models" / "default")
    with LocalServer(config) as server:
        client = server.client()
        assert client.health() == "SERVING"
        assert data_dir_version(data) == SCHEMA_VERSION
        for doc_id, text in meta["documents"].items():
            hits = client.search(text, collection=meta["collection"], k=1).hits
            assert [h.id for h in hits] == [doc_id]
        deadline = time.monotonic() + 60  # the lexical index is backfilled in the background
        while not client.stats(meta["collection"]).collections[0].lexical.ready:
            assert time.monotonic() < deadline, "lexical backfill did not finish"
            time.sleep(0.05)
        for doc_id, text in meta["documents"].items():
            for mode in ("lexical", "hybrid"):
                hits = client.search(text, collection=meta["collection"], k=1, mode=mode).hits
                assert [h.id for h in hits] == [doc_id], mode
        got = client.get(meta["collection"], list(meta["documents"]) + meta["deleted"])
        assert sorted(d.id for d in got) == sorted(meta["documents"])
    assert version_info(data)["data_format"]["found"] == SCHEMA_VERSION


def test_format_1_to_2_moves_vectors_to_a_rowid_table(tmp_path):
    """Format 2 stores vectors in a rowid table with a unique (variant, seq) index
    (format 1's WITHOUT ROWID table spilled every vector into overflow pages). The
    migration keeps every vector bit for bit, and upsert-replace still replaces."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "data-v1", data)
    meta = json.loads((data / "FIXTURE.json").read_text())

    def vectors(path: Path) -> tuple[str, list]:
        conn = sqlite3.connect(path / DB_NAME)
        try:
            ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'vectors'").fetchone()[0]
            rows = conn.execute("SELECT variant, seq, vec FROM vectors ORDER BY variant, seq").fetchall()
        finally:
            conn.close()
        return ddl, rows

    ddl_before, rows_before = vectors(data)
    assert "WITHOUT ROWID" in ddl_before
    with Indexer(data) as indexer:
        ddl_after, rows_after = vectors(data)
        assert "WITHOUT ROWID" not in ddl_after
        assert rows_after == rows_before  # every vector kept, bit for bit
        vecs = fixture_vectors(seed=meta["vector_seed"])
        from ranksearch.indexer import Document
        indexer.upsert(meta["collection"], [Document("doc-00", "replaced")],
                       {v: vecs[5:6] for v in meta["variants"]})
        _, rows_replaced = vectors(data)
        assert len(rows_replaced) == len(rows_before)  # replaced, not duplicated
        for variant in meta["variants"]:
            hit = indexer.search(meta["collection"], SearchRequest(variant=variant, k=2), vecs[5])[0]
            assert {h.id for h in hit} == {"doc-00", "doc-05"}


def test_doctor_leaves_old_data_unmigrated(tmp_path):
    """doctor runs before the first start of an upgrade: it must not migrate."""
    from ranksearch.service.doctor import SKIP, check_index

    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "service-data-v1", data)
    check = check_index(data, server_running=False)
    assert check.status == SKIP and "data format 1 is migrated to" in check.detail
    assert data_dir_version(data) == 1
