"""The content hash per document: Indexer.unchanged names the documents an upsert
may skip (same text and metadata, a vector in every variant), and an old database
gains the column by migration."""
from __future__ import annotations

import sqlite3

import numpy as np

from ixhelpers import docs, unit
from ranksearch.indexer import Document, VariantSpec
from ranksearch.indexer.store import MIGRATIONS, SCHEMA_VERSION, migrate


def test_unchanged_needs_same_text_metadata_and_every_variant(ix):
    rng = np.random.default_rng(0)
    ix.create_collection("c", [VariantSpec("v", 4)])
    ix.upsert("c", docs(3, meta=lambda i: {"g": str(i)}), {"v": unit(rng, 3, 4)})
    same = docs(3, meta=lambda i: {"g": str(i)})
    assert ix.unchanged("c", same) == {"d0", "d1", "d2"}
    edited = [Document("d0", same[0].text + "!", same[0].metadata),
              Document("d1", same[1].text, {"g": "other"}), same[2], Document("new", "x")]
    assert ix.unchanged("c", edited) == {"d2"}
    # a variant added later without backfill: no document is complete, none may be skipped
    ix.add_variant("c", VariantSpec("w", 4))
    assert ix.unchanged("c", same) == set()
    ix.put_vectors("c", "w", ["d0", "d1"], unit(rng, 2, 4))
    assert ix.unchanged("c", same) == {"d0", "d1"}


def test_migration_adds_a_null_hash_to_existing_rows(tmp_path):
    conn = sqlite3.connect(tmp_path / "old.sqlite3", isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for stmt in ";".join(MIGRATIONS[:2]).split(";"):
        if stmt.strip():
            conn.execute(stmt)
    conn.execute("INSERT INTO schema_version VALUES (2)")
    conn.execute("INSERT INTO documents VALUES (1, 'c', 'a', 'text', '{}', 1)")
    assert migrate(conn) == 2
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("SELECT id, content_hash FROM documents").fetchall() == [("a", None)]


def test_rebuild_logs_progress_with_an_eta(ix, caplog):
    import logging

    rng = np.random.default_rng(1)
    ix.create_collection("c", [VariantSpec("v", 4), VariantSpec("w", 4)])
    ix.upsert("c", docs(10), {"v": unit(rng, 10, 4), "w": unit(rng, 10, 4)})
    with caplog.at_level(logging.INFO, logger="ranksearch.indexer"):
        ix.rebuild()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rebuild:")]
    assert len(lines) == 2
    assert lines[0].startswith("rebuild: c/v done; 10 of 20 vectors (50%)") and "ETA" in lines[0]
    assert lines[1].startswith("rebuild: c/w done; 20 of 20 vectors (100%)") and lines[1].endswith("ETA 0 s")
