"""`ranksearch eval live`: replay judged queries against every variant of a live
collection through the running server, and compare their quality with significance.

Each variant answers every query (``Search`` with ``variant`` set, so the split, the
shadow and interleaving play no part and no impression is logged). With qrels, the
runs are scored with ranx (nDCG@10, MRR@10, R@10) and every variant is compared
with the collection's default variant by a paired t-test; without qrels, the
report gives per-variant overlap@10 with the default and latency only.

Queries: a BEIR ``queries.jsonl`` (``{"_id", "text"}``) or a text file with one query
per line (ids are then ``q1``, ``q2``, ...). Qrels: a BEIR ``qrels/*.tsv``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ranksearch.errors import InvalidArgument

METRICS = ["ndcg@10", "mrr@10", "recall@10"]


def read_queries(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise InvalidArgument("queries", f"{path} does not exist")
    out: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArgument("queries", f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or "_id" not in obj:
                raise InvalidArgument("queries", f"{path}:{n}: needs string '_id' and 'text'")
            out[str(obj["_id"])] = obj["text"]
        else:
            out[f"q{n}"] = line.strip()
    if not out:
        raise InvalidArgument("queries", f"{path} holds no query")
    return out


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise InvalidArgument("qrels", f"{path} does not exist")
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        parts = line.split("\t")
        if n == 1 and parts[0] in ("query-id", "qid"):
            continue
        if len(parts) < 3:
            if line.strip():
                raise InvalidArgument("qrels", f"{path}:{n}: expected query-id<TAB>corpus-id<TAB>score")
            continue
        try:
            score = int(parts[2])
        except ValueError:
            raise InvalidArgument("qrels", f"{path}:{n}: score {parts[2]!r} is not an integer") from None
        qrels.setdefault(parts[0], {})[parts[1]] = score
    return qrels


def replay(client, collection: str, queries: dict[str, str], k: int = 10) -> dict[str, Any]:
    """Run every query on every variant; {"variants", "default", "runs", "latency_ms"}."""
    info = next((c for c in client.list_collections().collections if c.name == collection), None)
    if info is None:
        raise InvalidArgument("collection", f"collection {collection!r} does not exist on the server")
    runs: dict[str, dict[str, dict[str, float]]] = {}
    latency: dict[str, list[float]] = {}
    for v in info.variants:
        runs[v.name], latency[v.name] = {}, []
        for qid, text in queries.items():
            t0 = time.perf_counter()
            res = client.search(text, collection=collection, k=k, variant=v.name)
            latency[v.name].append((time.perf_counter() - t0) * 1000.0)
            # ranks, not scores: two encoders' cosines are not on one scale
            runs[v.name][qid] = {h.id: float(k - i) for i, h in enumerate(res.hits)}
    return {"variants": [v.name for v in info.variants], "default": info.default_variant,
            "runs": runs, "latency_ms": {v: {"p50": float(np.percentile(x, 50)),
                                             "p95": float(np.percentile(x, 95))}
                                         for v, x in latency.items()}}


def judge(replayed: dict[str, Any], qrels: dict[str, dict[str, int]] | None) -> dict[str, Any]:
    """Quality per variant and significance against the default (ranx)."""
    out: dict[str, Any] = {"default": replayed["default"], "variants": {}}
    default = replayed["default"]
    for name in replayed["variants"]:
        run = replayed["runs"][name]
        overlap = np.mean([len(set(run[q]) & set(replayed["runs"][default][q])) / 10 for q in run])
        out["variants"][name] = {"overlap@10_with_default": float(overlap),
                                 "latency_ms": replayed["latency_ms"][name]}
    if not qrels:
        return out
    from ranx import Qrels, Run, compare

    judged = {q: d for q, d in qrels.items() if q in replayed["runs"][default]}
    if not judged:
        raise InvalidArgument("qrels", "no judged query is among the replayed queries")
    qr = Qrels(judged)
    ranx_runs = []
    for name in replayed["variants"]:
        run = {q: (replayed["runs"][name][q] or {"__none__": 0.0}) for q in judged}
        ranx_runs.append(Run(run, name=name))
    ranx_runs.sort(key=lambda r: r.name != default)  # the default first: the baseline
    report = compare(qr, ranx_runs, metrics=METRICS, stat_test="student", max_p=0.05,
                     make_comparable=True)
    data = report.to_dict()
    for name in replayed["variants"]:
        entry = out["variants"][name]
        entry.update({m: float(data[name]["scores"][m]) for m in METRICS})
        if name != default:
            entry["p_vs_default"] = {m: float(data[name]["comparisons"][default][m]) for m in METRICS}
    out["judged_queries"] = len(judged)
    return out


def summary_text(result: dict[str, Any]) -> str:
    rows = [f"{'variant':<16}{'nDCG@10':>9}{'MRR@10':>8}{'R@10':>7}{'p(nDCG)':>10}"
            f"{'ov@10':>7}{'p50 ms':>8}{'p95 ms':>8}"]
    for name, e in result["variants"].items():
        base = name == result["default"]
        p = "base" if base else (f"{e['p_vs_default']['ndcg@10']:.2g}" if "p_vs_default" in e else "-")
        q = (f"{e['ndcg@10']:>9.4f}{e['mrr@10']:>8.4f}{e['recall@10']:>7.3f}" if "ndcg@10" in e
             else f"{'-':>9}{'-':>8}{'-':>7}")
        rows.append(f"{name:<16}{q}{p:>10}{e['overlap@10_with_default']:>7.2f}"
                    f"{e['latency_ms']['p50']:>8.1f}{e['latency_ms']['p95']:>8.1f}")
    rows.append("p(nDCG): paired t-test against the default variant (base); ov@10: share of the "
                "default's top 10 that the variant also returns")
    return "\n".join(rows)
