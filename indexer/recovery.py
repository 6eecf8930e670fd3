"""Recovery of one variant's FAISS index at open: load its snapshot and replay
SQLite onto it, or rebuild it from the vectors in SQLite.

Per variant: load the snapshot; reconcile it with SQLite (remove ids whose documents
are gone or replaced, add the stored vectors it lacks -- this replays every change
newer than the snapshot, deletes included); verify the counts. A missing, truncated
or corrupt snapshot, or counts that disagree, is logged and the variant is rebuilt
from the vectors in SQLite (the caller snapshots it); open never fails because of a
snapshot.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ranksearch.indexer.faiss_index import VariantIndex
from ranksearch.indexer.snapshot import SnapshotError, SnapshotInfo, load_snapshot, snapshot_path
from ranksearch.indexer.store import Store
from ranksearch.indexer.types import VariantSpec

log = logging.getLogger("ranksearch.indexer")


@dataclass
class Recovered:
    index: VariantIndex
    #: the snapshot it came from (None: rebuilt from SQLite)
    snapshot: SnapshotInfo | None
    #: what happened, for Indexer.recovery: "snapshot seq N: ...", "rebuilt: <why>"
    note: str
    #: differs from its snapshot file (replayed changes, or rebuilt)
    changed: bool


def recover_variant(store: Store, data_dir: Path, collection: str, spec: VariantSpec) -> Recovered:
    path = snapshot_path(data_dir, collection, spec.name)
    try:
        index, info = load_snapshot(path, spec)
        added, removed = reconcile(store, collection, index)
        return Recovered(index, info, f"snapshot seq {info.seq}: replayed {added} added, {removed} removed",
                         bool(added or removed))
    except SnapshotError as exc:
        if path.exists() or store.count_vectors(collection, spec.name) != 0:
            log.warning("rebuilding %s/%s from SQLite: %s", collection, spec.name, exc)
        return Recovered(build_from_store(store, collection, spec), None, f"rebuilt: {exc}", True)


def reconcile(store: Store, collection: str, index: VariantIndex) -> tuple[int, int]:
    """Bring a loaded index in line with SQLite: returns (added, removed)."""
    stored = store.vector_seqs(collection, index.spec.name)
    have = index.ids()
    stale = np.setdiff1d(have, stored, assume_unique=True)
    missing = np.setdiff1d(stored, have, assume_unique=True)
    index.remove(stale)
    if len(missing):
        seqs, vecs = store.load_vectors(collection, index.spec.name, index.dim, missing.tolist())
        index.add(seqs, vecs)
    if index.count != len(stored):
        raise SnapshotError(f"{index.count} vectors after replay, SQLite has {len(stored)}")
    return len(missing), len(stale)


def build_from_store(store: Store, collection: str, spec: VariantSpec) -> VariantIndex:
    """A fresh index of every vector SQLite holds for the variant, main index built in one pass."""
    seqs, vecs = store.load_vectors(collection, spec.name, spec.dim)
    index = VariantIndex(spec, main=None)
    index.add(seqs, vecs)
    return index.rebuilt()
