"""Long documents: truncation against token windows pooled into one vector, and which
pooling, side by side in one run.

    .venv/bin/python benchmarks/long_text_pooling.py --corpus DIR --model MODEL_FOLDER \
        [--max-seq-length 512] [--out results/long-text]

Encodes the corpus twice with the same model: truncated to ``--max-seq-length`` tokens
(``long_text: truncate``), and as the windows ``long_text: window`` cuts
(ranksearch.encoder.long_text.text_windows, document prompt on each), timing both.
From the window vectors it forms one vector per document by several poolings (mean,
element-wise max, first window plus mean) and, for reference only, the score-level
maximum over a document's windows (not one vector per document: the index could not
serve it). Prints MRR@10 / nDCG@10 / R@10 on the train split (where the pooling is
chosen) and on the test split, and the encode time ratio. ``--out`` keeps the vectors.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ranksearch.encoder.corpus import document_text, load_beir
from ranksearch.encoder.embedder import load_encoder
from ranksearch.encoder.long_text import text_windows
from ranksearch.evaluation import metrics as M

TOP = 100


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


POOLINGS = {
    "mean": lambda w: _unit(w.mean(axis=0)),
    "max": lambda w: _unit(w.max(axis=0)),
    "first+mean": lambda w: _unit(w[0] + w.mean(axis=0)),
}


def run_from_scores(sims: np.ndarray, qids: list[str], doc_ids: list[str]) -> dict:
    """(q, n) scores -> {qid: {doc id: score}} for the top `TOP` of each query."""
    top = np.argsort(-sims, axis=1, kind="stable")[:, :TOP]
    return {q: {doc_ids[j]: float(sims[i, j]) for j in top[i]} for i, q in enumerate(qids)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True, type=Path, help="BEIR folder")
    ap.add_argument("--model", required=True, type=Path, help="model folder")
    ap.add_argument("--max-seq-length", type=int, default=512)
    ap.add_argument("--out", type=Path, help="folder for the vectors (npz)")
    args = ap.parse_args()

    splits = {s: load_beir(args.corpus, s) for s in ("train", "test")}
    corpus = splits["train"].corpus
    doc_ids = list(corpus)
    texts = [document_text(d) for d in corpus.values()]
    emb = load_encoder(args.model)
    emb.model.max_seq_length = args.max_seq_length
    prompt = emb.prompts["document"]

    per_doc = [text_windows(emb.model.tokenizer, t, prompt, args.max_seq_length) for t in texts]
    long_docs = [i for i, ws in enumerate(per_doc) if len(ws) > 1]
    short_docs = [i for i, ws in enumerate(per_doc) if len(ws) == 1]
    # a text that fits is one window in both modes: encode it once
    t0 = time.perf_counter()
    short_vecs = emb.encode([texts[i] for i in short_docs], role="document")  # (s, dim)
    t_short = time.perf_counter() - t0
    t0 = time.perf_counter()
    long_trunc = emb.encode([texts[i] for i in long_docs], role="document")  # (l, dim)
    t_trunc = time.perf_counter() - t0
    t0 = time.perf_counter()
    flat = emb.encode([w for i in long_docs for w in per_doc[i]], role="document")  # (windows, dim)
    t_window = time.perf_counter() - t0
    counts = [len(per_doc[i]) for i in long_docs]
    bounds = np.cumsum([0] + counts)
    print(f"{len(texts)} documents, {len(long_docs)} longer than {args.max_seq_length} tokens "
          f"({len(flat)} windows). Encode seconds (2-core machine, possibly shared): "
          f"{len(short_docs)} short documents {t_short:.0f}; long documents truncated {t_trunc:.0f}, "
          f"windowed {t_window:.0f} (x{t_window / t_trunc:.2f}); whole corpus "
          f"x{(t_short + t_window) / (t_short + t_trunc):.2f}")
    truncated = np.zeros((len(texts), emb.dim), dtype=np.float32)
    truncated[short_docs] = short_vecs
    truncated[long_docs] = long_trunc
    vectors = {"truncate": truncated}
    for name, pool in POOLINGS.items():
        v = truncated.copy()
        v[long_docs] = np.stack([pool(flat[bounds[j]:bounds[j + 1]]) for j in range(len(long_docs))])
        vectors[f"window/{name}"] = v
    # window -> its document, for the score-level reference (short documents: one window)
    owner = np.concatenate([np.array(short_docs, dtype=np.int64),
                            np.repeat(np.array(long_docs, dtype=np.int64), counts)])
    flat = np.concatenate([short_vecs, flat])
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        np.savez(args.out / "vectors.npz", flat=flat, owner=owner, doc_ids=np.array(doc_ids),
                 **{k.replace("/", "_"): v for k, v in vectors.items()})

    print(f"{'documents':<22} {'split':<6} {'MRR@10':>7} {'nDCG@10':>8} {'R@10':>6}")
    for split, beir in splits.items():
        qids = list(beir.qrels)
        q = emb.encode([beir.queries[x] for x in qids], role="query")  # (q, dim)
        scored = {name: q @ v.T for name, v in vectors.items()}  # (q, n)
        per_window = q @ flat.T  # (q, windows)
        maxsim = np.full((len(qids), len(texts)), -np.inf, dtype=np.float32)
        np.maximum.at(maxsim.T, owner, per_window.T)
        scored["window/maxsim (reference)"] = maxsim
        for name, sims in scored.items():
            m = M.evaluate(beir.qrels, run_from_scores(sims, qids, doc_ids))
            print(f"{name:<22} {split:<6} {m['mrr@10']:>7.3f} {m['ndcg@10']:>8.3f} {m['recall@10']:>6.3f}")


if __name__ == "__main__":
    main()
