"""Dense, lexical and hybrid search over one collection (indexer/collection.py).

Per call: one FAISS search for the whole query batch (dense and hybrid modes), one
BM25 scoring per query over the lexical index's postings in SQLite (lexical and
hybrid), fusion (hybrid, ranksearch.fusion), id -> document mapping from memory and
(when texts are wanted) one batched SQLite fetch of the hit texts, by seq.

Consistency: everything is read under the collection's read lock, and a batch's
SQLite transaction commits under the write lock, so postings, collection statistics
and the in-memory documents are one state. Texts are fetched by seq; if a hit's text
row has just been replaced or deleted (SQLite a batch ahead of what the search
saw), the whole search is run again on the new state, so a search never mixes two.

Pagination and cutoff are the same in every mode: rank, skip `offset`, keep `k`,
then drop hits beyond `min_score` (score >= min_score, farthest: <=), on the score
the mode returns (cosine, BM25 or fused). Filters restrict each retriever before
fusion, so a hybrid page holds only matching documents.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ranksearch import fusion
from ranksearch.indexer import lexical
from ranksearch.indexer.request import DENSE_MODES, LEXICAL_MODES, SearchRequest
from ranksearch.indexer.store import Store
from ranksearch.indexer.types import Explain, Hit

if TYPE_CHECKING:
    from ranksearch.indexer.collection import Collection

_RETRIES = 5
Run = list[tuple[int, float]]  # (seq, score), best first


def run_search(
    coll: "Collection",
    store: Store,
    request: SearchRequest,
    vectors: np.ndarray | None,
    queries: Sequence[str] | None,
    exact_filter_max: int,
) -> list[list[Hit]]:
    """request: resolved (mode set); vectors (q, d) unit rows for the dense modes,
    queries (q texts) for the lexical ones, both already validated."""
    for attempt in range(_RETRIES):
        # on the last attempt (a writer kept replacing the very documents we hit, or
        # the collection was deleted under us) texts that are gone are left empty
        hits, complete = _search_once(coll, store, request, vectors, queries, exact_filter_max,
                                      allow_missing=attempt == _RETRIES - 1)
        if complete:
            break
    return hits


def _dense_runs(coll, request, vectors, depth, allowed, exact_filter_max) -> list[Run]:
    index = coll.indexes[request.variant]  # the collection resolved the variant name
    if index.count == 0:
        return [[] for _ in range(len(vectors))]
    scores, ids = index.search(vectors, depth, request.farthest, allowed, dict(request.params),
                               exact_filter_max)  # (q, depth)
    return [[(seq, score) for seq, score in zip(id_row, score_row) if seq >= 0]
            for id_row, score_row in zip(ids.tolist(), scores.tolist())]


def _lexical_runs(coll, store, queries, depth, allowed) -> list[Run]:
    stats = store.lexical_stats(coll.name)
    runs = []
    for text in queries:
        terms = lexical.query_terms(coll.lexical, text)
        if stats is None or not terms:
            runs.append([])
            continue
        seqs, scores = lexical.bm25(coll.lexical, stats, store.lexical_postings(stats.cid, terms))
        runs.append(lexical.top(seqs, scores, depth, allowed))
    return runs


def _rank(request: SearchRequest, dense: Run | None, lex: Run | None) -> Run:
    if request.mode == "hybrid":
        h = request.hybrid
        return fusion.fuse([dense, lex], [h.dense_weight, h.lexical_weight], h.fusion, h.rrf_k,
                           h.normalization)
    return dense if dense is not None else lex


def _search_once(coll, store, request: SearchRequest, vectors, queries, exact_filter_max, allow_missing):
    nq = len(vectors) if vectors is not None else len(queries)
    with coll.lock.read():
        docs = coll.docs
        allowed = docs.allowed(request.filter) if request.filter else None
        if allowed is not None and len(allowed) == 0:
            return [[] for _ in range(nq)], True
        dense_depth, lexical_depth = (request.hybrid.depths(request.window) if request.mode == "hybrid"
                                      else (request.window, request.window))
        dense = (_dense_runs(coll, request, vectors, dense_depth, allowed, exact_filter_max)
                 if request.mode in DENSE_MODES else [None] * nq)
        lex = (_lexical_runs(coll, store, queries, lexical_depth, allowed)
               if request.mode in LEXICAL_MODES else [None] * nq)
        by_seq = docs.by_seq
        low, high = -np.inf, np.inf
        if request.min_score is not None:
            low, high = (low, request.min_score) if request.farthest else (request.min_score, high)
        rows: list[list[Hit]] = []
        seqs: list[int] = []
        for d_run, l_run in zip(dense, lex):
            ranking = _rank(request, d_run, l_run)[request.offset:request.window]
            explain = explainer(d_run, l_run) if request.explain else None
            row = []
            for seq, score in ranking:
                if not low <= score <= high:
                    continue
                doc_id, metadata = by_seq[seq]
                # metadata is copied so callers cannot change the index's view of it
                row.append(Hit(doc_id, score, "", dict(metadata) if metadata else {},
                               explain(seq) if explain else None))
                seqs.append(seq)
            rows.append(row)
        if request.include_text and seqs:
            texts = store.texts(list(set(seqs)))
            if len(texts) != len(set(seqs)) and not allow_missing:
                return [], False  # SQLite is a batch ahead: search again
            hits = (hit for row in rows for hit in row)
            for seq, hit in zip(seqs, hits):
                hit.text = texts.get(seq, "")
    return rows, True


def explainer(dense: Run | None, lex: Run | None):
    """seq -> Explain: its 1-based rank and score in each run (0 where absent)."""
    d = {seq: (rank, score) for rank, (seq, score) in enumerate(dense or [], start=1)}
    x = {seq: (rank, score) for rank, (seq, score) in enumerate(lex or [], start=1)}

    def explain(seq: int) -> Explain:
        dr, ds = d.get(seq, (0, 0.0))
        lr, ls = x.get(seq, (0, 0.0))
        return Explain(dr, ds, lr, ls)
    return explain
