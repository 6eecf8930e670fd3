"""The consistency check of one collection against SQLite, its source of truth:
every FAISS index holds exactly the vectors SQLite stores for its variant, the
in-memory mirror and the lexical index count SQLite's documents, and every snapshot
file reads back. What ``Indexer.verify`` (and the Verify RPC) reports."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ranksearch.indexer.snapshot import SnapshotError, load_snapshot, snapshot_path

if TYPE_CHECKING:
    from ranksearch.indexer.collection import Collection


def verify_collection(c: "Collection") -> tuple[dict[str, Any], list[str]]:
    """(report entry, problems); the caller holds the writer and the collection's read lock."""
    store = c.shared.store
    problems: list[str] = []
    docs = store.count_documents(c.name)
    entry: dict[str, Any] = {"documents": docs, "variants": {}}
    if len(c.docs) != docs:
        problems.append(f"{c.name}: {len(c.docs)} documents in memory, {docs} in SQLite")
    for name, index in c.indexes.items():
        where = f"{c.name}/{name}"
        stored = store.vector_seqs(c.name, name)
        have = np.sort(index.ids())
        ok = len(have) == len(stored) and bool((have == stored).all())
        if not ok:
            problems.append(f"{where}: index holds {len(have)} ids, SQLite {len(stored)} vectors, sets differ")
        live = None if index.main is None else index.main.ntotal - len(index.tombstones)
        if live is not None and live != index.count:
            problems.append(f"{where}: main index holds {live} live vectors, exact {index.count}")
        missing = docs - len(stored)
        if missing:
            problems.append(f"{where}: {missing} documents have no vector for this variant "
                            "(backfill with put_vectors)")
        entry["variants"][name] = {"vectors": int(index.count), "index_matches_sqlite": ok}
        path = snapshot_path(c.shared.data_dir, c.name, name)
        if path.exists():
            try:
                load_snapshot(path, c.specs[name])
            except SnapshotError as exc:
                problems.append(f"{where}: snapshot unreadable: {exc}")
    lex = store.lexical_stats(c.name)
    if lex is not None and lex.ready and lex.docs != docs:
        problems.append(f"{c.name}: lexical index holds {lex.docs} documents, SQLite {docs}")
    entry["lexical_documents"] = lex.docs if lex else 0
    return entry, problems
