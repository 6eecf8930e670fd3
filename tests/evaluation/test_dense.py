"""A dense variant on an approximate index: agreement with exact search is measured."""
import json

import numpy as np

from ranksearch.encoder.embedder import load_encoder
from ranksearch.evaluation.dense import exact_top, overlap, run_dense
from ranksearch.service.testing import build_tiny_model


def test_hnsw_variant_reports_agreement_with_exact_search(tmp_path, tiny_corpus):
    emb = load_encoder(build_tiny_model(tmp_path / "model"))
    docs = [json.loads(line) for line in (tiny_corpus / "corpus.jsonl").read_text().splitlines()]
    ids, texts = [d["_id"] for d in docs], [d["text"] for d in docs]
    res = run_dense(emb, {"kind": "hnsw", "params": {"M": 8, "efConstruction": 40, "efSearch": 16}},
                    ids, texts, ["q0", "q1", "q2"], ["json parse", "sqlite commit", "socket"],
                    top_k=100, latency_queries=3, name="h")
    assert 0.0 <= res["nearest_agreement"] <= 1.0
    assert res["farthest_agreement"] == 1.0   # the indexer answers farthest exactly
    assert [len(res["run"][q]) for q in ("q0", "q1", "q2")] == [30, 30, 30]
    assert res["latency"]["search"]["n"] == 3 and res["cost"]["index_bytes"] > 0


def test_exact_top_and_overlap():
    vecs = np.eye(4, dtype=np.float32)
    q = np.array([[1.0, 0.5, 0.0, -1.0]], dtype=np.float32)
    assert exact_top(vecs, q, 2, farthest=False).tolist() == [[0, 1]]
    assert exact_top(vecs, q, 1, farthest=True).tolist() == [[3]]
    assert overlap([["a", "b"]], [["b", "c"]]) == 0.5


def test_more_queries_than_one_served_search_call_allows(tmp_path, tiny_corpus):
    """A tuned hybrid makes the dense run answer test + train queries (stdlib: 1,855),
    more than the indexer's default max_queries (1024): the harness's private index
    answers them all."""
    from ranksearch.indexer import IndexerConfig

    emb = load_encoder(build_tiny_model(tmp_path / "model"))
    docs = [json.loads(line) for line in (tiny_corpus / "corpus.jsonl").read_text().splitlines()]
    n = IndexerConfig.max_queries + 1
    qids, q_texts = [f"q{i}" for i in range(n)], [f"query {i % 7}" for i in range(n)]
    res = run_dense(emb, {"kind": "flat"}, [d["_id"] for d in docs], [d["text"] for d in docs],
                    qids, q_texts, top_k=5, latency_queries=2, name="f")
    assert len(res["run"]) == n and all(len(res["run"][q]) == 5 for q in qids)
