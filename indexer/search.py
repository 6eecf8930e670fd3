"""Nearest and farthest search over one collection's in-memory state.

Per call: one FAISS search for the whole query batch, id -> document mapping from
memory, and (when texts are wanted) one batched SQLite fetch of the hit texts, by
seq. The SQLite transaction of a batch commits before the batch is applied in
memory, so SQLite can be one batch ahead of what a search saw: if a hit's text row
has just been replaced or deleted, the whole search is run again on the new state,
so a search never mixes two states.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ranksearch.indexer.state import CollectionState
from ranksearch.indexer.store import Store
from ranksearch.indexer.types import Hit

MODES = ("nearest", "farthest")
_RETRIES = 5


def run_search(
    state: CollectionState,
    store: Store,
    variant: str,
    queries: np.ndarray,
    k: int,
    farthest: bool,
    flt: dict[str, str],
    offset: int,
    min_score: float | None,
    params: dict[str, Any],
    include_text: bool,
    exact_filter_max: int,
) -> list[list[Hit]]:
    """queries (q, d) unit rows, already validated."""
    for attempt in range(_RETRIES):
        # on the last attempt (a writer kept replacing the very documents we hit, or
        # the collection was deleted under us) texts that are gone are left empty
        hits, complete = _search_once(
            state, store, variant, queries, k, farthest, flt, offset, min_score, params, include_text,
            exact_filter_max, allow_missing=attempt == _RETRIES - 1,
        )
        if complete:
            break
    return hits


def _search_once(state, store, variant, queries, k, farthest, flt, offset, min_score, params, include_text,
                 exact_filter_max, allow_missing):
    nq = len(queries)
    with state.lock.read():
        index = state.indexes[variant]
        allowed = state.allowed(flt) if flt else None
        if index.count == 0 or (allowed is not None and len(allowed) == 0):
            return [[] for _ in range(nq)], True
        scores, ids = index.search(queries, k + offset, farthest, allowed, params, exact_filter_max)
        scores, ids = scores[:, offset:], ids[:, offset:]  # (q, k)
        by_seq = state.by_seq
        rows: list[list[Hit]] = []
        seqs: list[int] = []
        low = -np.inf if min_score is None or farthest else min_score
        high = np.inf if min_score is None or not farthest else min_score
        for id_row, score_row in zip(ids.tolist(), scores.tolist()):
            row = []
            for seq, score in zip(id_row, score_row):
                if seq < 0 or not low <= score <= high:
                    continue
                doc_id, metadata = by_seq[seq]
                # metadata is copied so callers cannot change the index's view of it
                row.append(Hit(doc_id, score, "", dict(metadata) if metadata else {}))
                seqs.append(seq)
            rows.append(row)
        if include_text and seqs:
            texts = store.texts(list(set(seqs)))
            if len(texts) != len(set(seqs)) and not allow_missing:
                return [], False  # SQLite is a batch ahead: search again
            hits = (hit for row in rows for hit in row)
            for seq, hit in zip(seqs, hits):
                hit.text = texts.get(seq, "")
    return rows, True
