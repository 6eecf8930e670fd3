"""Retrieval quality with ranx, paired significance tests, and TREC run files.

A run is ``{query_id: {doc_id: score}}`` in the order the system returned the hits;
TREC run lines are ``qid Q0 docid rank score tag`` so anyone can recompute the metrics.
Metrics are computed from the rank column of the saved run file: equal scores keep
the system's order (a stable sort by score), so no metric depends on how a library
breaks ties.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

METRICS = ["ndcg@10", "mrr@10", "recall@1", "recall@10", "recall@100", "hit_rate@10"]
HEADLINE = "ndcg@10"

Run = dict[str, dict[str, float]]


def write_trec(run: Run, path: Path, tag: str) -> None:
    lines = []
    for qid in sorted(run):
        ranked = sorted(run[qid].items(), key=lambda kv: -kv[1])  # stable: ties keep system order
        lines.extend(f"{qid} Q0 {doc} {i + 1} {score:.6f} {tag}"
                     for i, (doc, score) in enumerate(ranked))
    path.write_text("\n".join(lines) + "\n")


def read_trec(path: Path) -> Run:
    """``{qid: {doc: score}}`` with docs in rank-column order."""
    rows: dict[str, list[tuple[int, str, float]]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            qid, _, doc, rank, score, _ = line.split()
            rows.setdefault(qid, []).append((int(rank), doc, float(score)))
    return {q: {doc: score for _, doc, score in sorted(r)} for q, r in rows.items()}


def by_rank(run: Run) -> Run:
    """Scores replaced by ``n - position`` so that evaluation follows the run's order."""
    return {q: {doc: float(len(docs) - i) for i, doc in enumerate(docs)} for q, docs in run.items()}


def _ranx(qrels: dict[str, dict[str, int]], run: Run, name: str):
    from ranx import Qrels, Run as RanxRun

    # every query in qrels gets an entry, empty if the system returned nothing
    ordered = by_rank(run)
    full = {q: dict(ordered.get(q, {})) for q in qrels}
    for q, docs in full.items():
        if not docs:
            docs["__none__"] = 0.0
    return Qrels(qrels), RanxRun(full, name=name)


def evaluate(qrels: dict[str, dict[str, int]], run: Run) -> dict[str, float]:
    from ranx import evaluate as ranx_evaluate

    q, r = _ranx(qrels, run, "run")
    scores = ranx_evaluate(q, r, METRICS, make_comparable=True)
    return {m: float(scores[m]) for m in METRICS}


def compare(qrels: dict[str, dict[str, int]], runs: dict[str, Run], stat_test: str,
            max_p: float) -> dict:
    """Paired tests between every pair of runs (ranx.compare). Returns
    ``{(a, b) frozen as "a|b": {metric: {"p_value", "significant"}}}`` for a != b, both orders."""
    from ranx import Qrels, compare as ranx_compare

    names = list(runs)
    ranx_runs = [_ranx(qrels, runs[n], n)[1] for n in names]
    report = ranx_compare(Qrels(qrels), ranx_runs, METRICS, stat_test=stat_test, max_p=max_p,
                          make_comparable=True, rounding_digits=6)
    out = {}
    for a in names:
        for b in names:
            if a != b:
                out[f"{a}|{b}"] = {m: {"p_value": float(report.comparisons[a, b][m]["p_value"]),
                                       "significant": bool(report.comparisons[a, b][m]["significant"])}
                                   for m in METRICS}
    return out


def mean_spread(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "min": float(arr.min()), "max": float(arr.max()), "n": int(len(arr))}
