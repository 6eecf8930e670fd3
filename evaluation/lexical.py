"""BM25 (bm25s), the lexical reference added to every evaluation."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .latency import dir_size, percentiles, time_calls


def run_bm25(doc_ids: list[str], doc_texts: list[str], qids: list[str], q_texts: list[str],
             top_k: int, latency_queries: int, analyzer: str = "standard") -> dict:
    """Index the corpus, retrieve ``top_k`` per query; returns the run, throughput,
    latency and index size. ``analyzer`` (`ranksearch.analysis`) turns texts into the
    terms bm25s counts: the harness and the served lexical index see the same terms."""
    import bm25s

    from ranksearch.analysis import get_analyzer

    terms = get_analyzer(analyzer).terms
    t0 = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index([terms(t) for t in doc_texts], show_progress=False)
    index_s = time.perf_counter() - t0
    k = min(top_k, len(doc_ids))
    docs, scores = retriever.retrieve([terms(t) for t in q_texts], k=k, show_progress=False,
                                      n_threads=1)
    run = {qid: {doc_ids[int(d)]: float(s) for d, s in zip(docs[i], scores[i])}
           for i, qid in enumerate(qids)}

    def one(text):
        retriever.retrieve([terms(text)], k=min(10, len(doc_ids)), show_progress=False,
                           n_threads=1)

    search_ms = time_calls(one, q_texts[:latency_queries])
    with tempfile.TemporaryDirectory() as tmp:
        retriever.save(tmp)
        size = dir_size(Path(tmp))
    return {"run": run,
            "latency": {"index_docs_per_s": len(doc_ids) / index_s if index_s else None,
                        "query_encode": percentiles([]),
                        "search": percentiles(search_ms)},
            "analyzer": analyzer,
            "cost": {"parameters": 0, "flops_per_token": 0, "size_bytes": 0,
                     "index_bytes": int(size), "dim": None, "rank": None, "heads": None,
                     "note": f"BM25 over the {analyzer!r} analyzer's terms: no encoder; query "
                             "cost is analysis plus sparse scoring, measured in search latency"},
            "farthest_agreement": None, "nearest_agreement": None,
            "vectors": np.zeros((0, 0), np.float32)}
