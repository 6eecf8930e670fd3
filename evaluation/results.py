"""results.json is the contract between running and reporting. This module reads it
and derives what reports show: significance against the baseline, the recommendation,
the Pareto frontier, the CSV, a plain-text summary."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ranksearch.errors import InvalidArgument

from .metrics import HEADLINE, METRICS

#: A recommendation drawn from fewer test queries than this carries a small-sample warning.
SMALL_SAMPLE_QUERIES = 50


def load_results(folder: Path) -> dict:
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise InvalidArgument("RESULTS_DIR", f"{path} not found (run `ranksearch eval` first)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidArgument("RESULTS_DIR", f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None


def significance(results: dict, a: str, b: str, metric: str = HEADLINE) -> dict:
    """p-value of a vs b on metric, and the direction of b relative to a
    ('up' = b significantly better, 'down' = significantly worse, '' = not significant)."""
    pair = results["significance"]["pairs"].get(f"{a}|{b}")
    if pair is None:
        return {"p_value": None, "significant": False, "direction": ""}
    entry = pair[metric]
    va, vb = (_variant(results, n)["metrics"][metric] for n in (a, b))
    direction = "" if not entry["significant"] else ("up" if vb > va else "down")
    return {**entry, "direction": direction, "delta": vb - va}


def _variant(results: dict, name: str) -> dict:
    for v in results["variants"]:
        if v["name"] == name:
            return v
    raise InvalidArgument("variant", f"no variant {name!r} in results")


def query_latency_ms(v: dict) -> float:
    """Single-query latency p50: query encoding plus search (BM25: search only)."""
    lat = v["latency"]
    enc = (lat.get("query_encode") or {}).get("p50_ms") or 0.0
    srch = (lat.get("search") or {}).get("p50_ms") or 0.0
    return enc + srch


def cost_key(v: dict) -> tuple:
    """Cheaper first: fewer encoder FLOPs per token, then lower measured query latency."""
    return (v["cost"].get("flops_per_token") or 0, query_latency_ms(v))


def decide(results: dict) -> dict:
    """The cheapest variant whose nDCG@10 is not significantly worse than the best's."""
    variants = results["variants"]
    if not variants:
        return {"name": None}
    best = max(variants, key=lambda v: v["metrics"][HEADLINE])
    ok = [v for v in variants
          if v["name"] == best["name"]
          or significance(results, best["name"], v["name"])["direction"] != "down"]
    pick = min(ok, key=cost_key)
    return {"name": pick["name"], "ndcg@10": pick["metrics"][HEADLINE],
            "best": best["name"], "best_ndcg@10": best["metrics"][HEADLINE],
            "candidates": [v["name"] for v in ok],
            "rule": "cheapest (FLOPs/token, then query latency p50) among variants whose "
                    f"nDCG@10 is not significantly worse than the best "
                    f"({results['significance']['test']}, p < {results['significance']['max_p']})"}


def pareto(points: list[tuple[str, float, float]]) -> list[str]:
    """Names on the frontier of (latency lower-better, quality higher-better)."""
    front, best_q = [], float("-inf")
    for name, lat, q in sorted(points, key=lambda p: (p[1], -p[2])):
        if q > best_q:
            front.append(name)
            best_q = q
    return front


CSV_COLUMNS = ["variant", "kind", "rank", "precision", "engine", f"{HEADLINE}_change_vs_fp32",
               "heads", *METRICS, "seeds", f"{HEADLINE}_std",
               "corpus_docs_per_s", "query_encode_p50_ms", "query_encode_p95_ms",
               "search_p50_ms", "search_p95_ms", "end_to_end_p50_ms", "end_to_end_p95_ms",
               "parameters", "flops_per_token", "model_bytes", "index_bytes", "peak_rss_bytes",
               "nearest_agreement@10", "farthest_agreement@10", f"p_value_vs_baseline_{HEADLINE}"]


def _rank_str(rank) -> str:
    if isinstance(rank, list):
        return str(rank[0]) if len(set(rank)) == 1 else "/".join(map(str, rank))
    return "" if rank is None else str(rank)


#: nDCG@10 change against fp32 within which a precision counts as a drop-in replacement
PRECISION_TOLERANCE = 0.003


def precision_delta(results: dict, v: dict, metric: str = HEADLINE) -> float | None:
    """Quality change of a bf16/int8 variant against the fp32 run of the same model
    folder in the same results (None for fp32, BM25, or without such a sibling)."""
    if (v.get("precision") or "fp32") == "fp32" or not v.get("model_folder"):
        return None
    for other in results["variants"]:
        if other.get("model_folder") == v["model_folder"] and other.get("precision") == "fp32":
            return v["metrics"][metric] - other["metrics"][metric]
    return None


def precision_text(results: dict, lang: str = "en") -> list[str]:
    """One line per bf16/int8 variant: its nDCG@10 change against fp32, loudly where
    it exceeds PRECISION_TOLERANCE."""
    from .strings import text

    lines = []
    for v in results["variants"]:
        delta = precision_delta(results, v)
        if delta is not None:
            key = "precision_change_large" if abs(delta) > PRECISION_TOLERANCE else "precision_change"
            lines.append(text(lang, key, variant=v["name"], precision=v["precision"], delta=delta,
                              tolerance=PRECISION_TOLERANCE))
    return lines


def csv_rows(results: dict) -> list[dict]:
    rows = []
    for v in results["variants"]:
        lat, cost = v["latency"], v["cost"]
        e2e = lat.get("end_to_end") or {}
        sig = significance(results, results["baseline"], v["name"])
        rows.append({
            "variant": v["name"], "kind": v["kind"], "rank": _rank_str(v.get("rank")),
            "precision": v.get("precision") or "", "engine": v["cost"].get("engine") or "",
            f"{HEADLINE}_change_vs_fp32": precision_delta(results, v),
            "heads": v.get("heads") or "", **{m: round(v["metrics"][m], 6) for m in METRICS},
            "seeds": len(v["seeds"]), f"{HEADLINE}_std": round(v["spread"][HEADLINE]["std"], 6),
            "corpus_docs_per_s": lat.get("corpus_encode_docs_per_s") or lat.get("index_docs_per_s"),
            "query_encode_p50_ms": (lat.get("query_encode") or {}).get("p50_ms"),
            "query_encode_p95_ms": (lat.get("query_encode") or {}).get("p95_ms"),
            "search_p50_ms": lat["search"]["p50_ms"], "search_p95_ms": lat["search"]["p95_ms"],
            "end_to_end_p50_ms": e2e.get("p50_ms"), "end_to_end_p95_ms": e2e.get("p95_ms"),
            "parameters": cost.get("parameters"), "flops_per_token": cost.get("flops_per_token"),
            "model_bytes": cost.get("size_bytes"), "index_bytes": cost.get("index_bytes"),
            "peak_rss_bytes": cost.get("peak_rss_bytes"),
            "nearest_agreement@10": v.get("nearest_agreement"),
            "farthest_agreement@10": v.get("farthest_agreement"),
            f"p_value_vs_baseline_{HEADLINE}": sig["p_value"]})
    return rows


def write_csv(results: dict, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        w.writerows(csv_rows(results))


def summary_text(results: dict, lang: str = "en") -> str:
    """The summary table as plain text (terminal, issue notes), with a legend for the
    ``sig`` column and, under `SMALL_SAMPLE_QUERIES` test queries, a warning."""
    from .strings import text

    head = (f"{'variant':<10} {'rank':>5} {'nDCG@10':>8} {'MRR@10':>7} {'R@1':>6} {'R@10':>6} "
            f"{'R@100':>6} {'sig':>4} {'p':>7} {'docs/s':>7} {'qenc p50/p95 ms':>16} "
            f"{'search p50/p95 ms':>18} {'GFLOP/tok':>9}")
    lines = [head]
    base = results["baseline"]
    for r in csv_rows(results):
        v = _variant(results, r["variant"])
        sig = significance(results, base, r["variant"])
        mark = "base" if r["variant"] == base else {"up": "+", "down": "-", "": "ns"}[sig["direction"]]
        p = "" if sig["p_value"] is None else f"{sig['p_value']:.3g}"
        qe = v["latency"].get("query_encode") or {}
        qenc = "-" if qe.get("p50_ms") is None else f"{qe['p50_ms']:.1f}/{qe['p95_ms']:.1f}"
        sr = v["latency"]["search"]
        flops = (r["flops_per_token"] or 0) / 1e9
        dps = r["corpus_docs_per_s"]
        lines.append(f"{r['variant']:<10} {r['rank']:>5} {r['ndcg@10']:>8.4f} {r['mrr@10']:>7.4f} "
                     f"{r['recall@1']:>6.3f} {r['recall@10']:>6.3f} {r['recall@100']:>6.3f} "
                     f"{mark:>4} {p:>7} {(dps or 0):>7.0f} {qenc:>16} "
                     f"{sr['p50_ms']:>8.2f}/{sr['p95_ms']:<8.2f} {flops:>9.4f}")
    sig = results["significance"]
    lines.append(text(lang, "console_sig_legend", base=base, test=sig["test"], max_p=sig["max_p"]))
    lines += precision_text(results, lang)
    n = results["corpus"].get("queries") or 0
    if n < SMALL_SAMPLE_QUERIES:
        lines.append(text(lang, "small_sample", n=n, minimum=SMALL_SAMPLE_QUERIES))
    from .hybrid_report import hybrid_text

    lines += hybrid_text(results)
    rec = results.get("recommendation") or {}
    if rec.get("name"):
        rule = text(lang, "recommend_rule", test=sig["test"], max_p=sig["max_p"])
        lines.append(text(lang, "console_recommendation", name=rec["name"], best=rec["best"],
                          rule=rule))
    return "\n".join(lines)
