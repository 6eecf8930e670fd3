"""One dense variant on one seed: encode the corpus, index it with the product's
Indexer, run the queries; measure throughput, latency, cost and index agreement."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ranksearch.indexer.request import SearchRequest
from .latency import dir_size, percentiles, time_calls

UPSERT_BATCH = 512
AGREEMENT_K = 10


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int, farthest: bool) -> np.ndarray:
    """Brute-force (q, k) row indices by inner product (farthest: smallest)."""
    sims = queries @ vectors.T  # (q, n)
    if farthest:
        sims = -sims
    k = min(k, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def overlap(found: list[list[str]], exact: list[list[str]]) -> float:
    """Mean fraction of the exact top-k that the index returned."""
    vals = [len(set(f) & set(e)) / len(e) for f, e in zip(found, exact) if e]
    return float(np.mean(vals)) if vals else 1.0


def run_dense(embedder, index: dict, doc_ids: list[str], doc_texts: list[str], qids: list[str],
              q_texts: list[str], top_k: int, latency_queries: int, name: str) -> dict:
    from ranksearch.indexer import Document, Indexer, IndexerConfig, IndexSpec, VariantSpec

    t0 = time.perf_counter()
    doc_vecs = embedder.encode(doc_texts, batch_size=64, show_progress=True, role="document")  # (n, dim)
    encode_s = time.perf_counter() - t0
    q_vecs = embedder.encode(q_texts, batch_size=64, role="query")  # (q, dim)

    with tempfile.TemporaryDirectory(prefix="ranksearch-eval-") as tmp:
        # this private index answers every evaluated query in one call (the default limit
        # guards served requests; a corpus may have more queries)
        idx = Indexer(Path(tmp), IndexerConfig(max_queries=max(IndexerConfig.max_queries, len(qids))))
        idx.open()
        try:
            spec = VariantSpec(name=name, dim=embedder.dim,
                               index=IndexSpec(kind=index["kind"], params=dict(index.get("params", {}))),
                               encoder=embedder.source)
            idx.create_collection("eval", [spec], default_variant=name)
            t1 = time.perf_counter()
            for s in range(0, len(doc_ids), UPSERT_BATCH):
                docs = [Document(id=d) for d in doc_ids[s:s + UPSERT_BATCH]]
                idx.upsert("eval", docs, {name: doc_vecs[s:s + UPSERT_BATCH]})
            index_s = time.perf_counter() - t1
            k = min(top_k, len(doc_ids))
            hits = idx.search("eval", SearchRequest(variant=name, k=k), q_vecs)
            run = {qid: {h.id: float(h.score) for h in hs} for qid, hs in zip(qids, hits)}
            near = [[h.id for h in hs[:AGREEMENT_K]] for hs in hits]
            far_hits = idx.search("eval", SearchRequest(variant=name, k=min(AGREEMENT_K, len(doc_ids)), mode="farthest"), q_vecs)
            far = [[h.id for h in hs] for hs in far_hits]
            ex_near = exact_top(doc_vecs, q_vecs, AGREEMENT_K, farthest=False)
            ex_far = exact_top(doc_vecs, q_vecs, AGREEMENT_K, farthest=True)
            ids = np.asarray(doc_ids, dtype=object)
            lat_q = q_texts[:latency_queries]
            enc_ms = time_calls(lambda t: embedder.encode([t], batch_size=1, role="query"), lat_q)
            one_vecs = q_vecs[:latency_queries]
            search_ms = time_calls(lambda v: idx.search("eval", SearchRequest(variant=name, k=10), v[None, :]),
                                   list(one_vecs))
            idx.snapshot()
            index_bytes = dir_size(Path(tmp))
        finally:
            idx.close()

    desc = embedder.describe()
    return {"run": run,
            "latency": {"corpus_encode_docs_per_s": len(doc_ids) / encode_s if encode_s else None,
                        "corpus_encode_seconds": encode_s,
                        "index_build_seconds": index_s,
                        "query_encode": percentiles(enc_ms),
                        "search": percentiles(search_ms)},
            "cost": {"parameters": desc.get("parameters"), "flops_per_token": desc.get("flops_per_token"),
                     "flops_seq_len": desc.get("flops_seq_len"), "size_bytes": desc.get("size_bytes"),
                     "index_bytes": int(index_bytes), "dim": embedder.dim,
                     "rank": desc.get("rank"), "heads": desc.get("heads"),
                     "layers": desc.get("layers"), "value_dim": desc.get("value_dim")},
            "nearest_agreement": overlap(near, [list(ids[r]) for r in ex_near]),
            "farthest_agreement": overlap(far, [list(ids[r]) for r in ex_far]),
            "q_vecs": q_vecs}
