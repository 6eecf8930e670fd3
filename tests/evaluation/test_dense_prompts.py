"""The harness encodes the corpus as documents and the queries as queries, so a model
with prompts (E5: "query: " / "passage: ") is evaluated as the service runs it."""
import json

import numpy as np

from ranksearch.encoder.embedder import load_encoder
from ranksearch.evaluation.dense import run_dense
from ranksearch.service.testing import build_tiny_model

PROMPTS = {"query": "query: ", "document": "passage: "}


def test_dense_run_scores_prompted_queries_against_prompted_documents(tmp_path, tiny_corpus):
    folder = build_tiny_model(tmp_path / "model")
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    (folder / "config_sentence_transformers.json").write_text(json.dumps({**config, "prompts": PROMPTS}))
    emb = load_encoder(folder)
    assert emb.prompts == PROMPTS
    docs = [json.loads(line) for line in (tiny_corpus / "corpus.jsonl").read_text().splitlines()]
    ids, texts = [d["_id"] for d in docs], [d["text"] for d in docs]
    queries = ["json parse", "sqlite commit"]
    res = run_dense(emb, {"kind": "flat"}, ids, texts, ["q0", "q1"], queries, top_k=5,
                    latency_queries=1, name="p")
    raw = emb.model  # the reference: prompt + text through sentence-transformers itself
    d = raw.encode([PROMPTS["document"] + t for t in texts], normalize_embeddings=True)
    q = raw.encode([PROMPTS["query"] + t for t in queries], normalize_embeddings=True)
    for qi, qid in enumerate(["q0", "q1"]):
        ref = dict(zip(ids, (d @ q[qi]).tolist()))  # id -> prompted score
        got = res["run"][qid]
        for doc_id, score in got.items():  # every score is the prompted one ...
            assert abs(score - ref[doc_id]) <= 1e-5
        # ... and the run is the top 5 of them (compared as scores: ties may swap ids)
        np.testing.assert_allclose(sorted(got.values()), sorted(ref.values())[-5:], atol=1e-5)
