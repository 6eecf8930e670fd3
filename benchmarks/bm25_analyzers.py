"""BM25 quality per lexical analyzer on one corpus, side by side in one run.

    .venv/bin/python benchmarks/bm25_analyzers.py --corpus /path/to/manpages-ja

Prints MRR@10, nDCG@10 and recall@10 on the test split for the ``standard``
analyzer and for SudachiPy split modes A, B and C (the ``ja`` analyzer), plus the
analysis time of the whole corpus. The numbers decide the ``ja`` analyzer's default
split mode (see docs/JAPANESE.md).
"""
from __future__ import annotations

import argparse
import time

from ranksearch.analysis import JapaneseAnalyzer, get_analyzer
from ranksearch.encoder.corpus import document_text, load_beir, resolve_corpus
from ranksearch.evaluation import metrics as M


def bm25_run(terms, doc_ids, doc_texts, qids, q_texts, k=100):
    import bm25s

    retriever = bm25s.BM25()
    retriever.index([terms(t) for t in doc_texts], show_progress=False)
    docs, scores = retriever.retrieve([terms(t) for t in q_texts], k=min(k, len(doc_ids)),
                                      show_progress=False, n_threads=1)
    return {q: {doc_ids[int(d)]: float(s) for d, s in zip(docs[i], scores[i])}
            for i, q in enumerate(qids)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True, help="BEIR folder or 'stdlib'")
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    beir = load_beir(resolve_corpus(args.corpus), args.split)
    doc_ids = list(beir.corpus)
    doc_texts = [document_text(d) for d in beir.corpus.values()]
    qids = list(beir.queries)
    q_texts = [beir.queries[q] for q in qids]
    candidates = {"standard": get_analyzer("standard")}
    for mode in "ABC":
        candidates[f"ja (split mode {mode})"] = JapaneseAnalyzer(mode)
    print(f"{args.corpus}: {len(doc_ids)} documents, {len(qids)} {args.split} queries")
    print(f"{'analyzer':<22}{'MRR@10':>8}{'nDCG@10':>9}{'R@10':>7}{'analysis s':>12}")
    for name, analyzer in candidates.items():
        t0 = time.perf_counter()
        run = bm25_run(analyzer.terms, doc_ids, doc_texts, qids, q_texts)
        seconds = time.perf_counter() - t0
        m = M.evaluate(beir.qrels, run)
        print(f"{name:<22}{m['mrr@10']:>8.3f}{m['ndcg@10']:>9.3f}{m['recall@10']:>7.3f}"
              f"{seconds:>12.1f}")


if __name__ == "__main__":
    main()
