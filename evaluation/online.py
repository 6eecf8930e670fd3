"""Readout of a live experiment: pure functions from the exported experiment log
(``ExperimentLog.export``) to the numbers analysts read.

- Split traffic, per variant: impressions, CTR (clicks per impression), abandonment
  (share of impressions without a click), MRR of clicks (1/rank of the first click,
  0 without one); the CTR of each variant against the default's with a two-sided
  two-proportion z-test on "impression had a click".
- Interleaving, per pair: wins of each team, ties, the preference for A
  (wins_a / (wins_a + wins_b)) with a Wilson 95% interval and a two-sided sign test
  (exact binomial, p = 0.5) — the test Chapelle et al. (TOIS 2012) use.
- Shadow, per (primary, shadow) pair: overlap@k, Kendall's tau on the shared ids,
  latency p50/p95 of both.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def sign_test(wins_a: int, wins_b: int) -> float:
    """Two-sided exact binomial test of wins_a vs wins_b under p = 0.5 (ties dropped)."""
    n = wins_a + wins_b
    if n == 0:
        return 1.0
    from scipy.stats import binomtest
    return float(binomtest(wins_a, n, 0.5, alternative="two-sided").pvalue)


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided z-test p-value for x1/n1 vs x2/n2 (1.0 when undefined)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return float(math.erfc(abs(z) / math.sqrt(2)))


def split_summary(impressions: list[dict[str, Any]], default: str = "") -> dict[str, dict[str, Any]]:
    per: dict[str, dict[str, Any]] = {}
    for imp in impressions:
        if imp["kind"] != "split":
            continue
        row = per.setdefault(imp["variant"], {"impressions": 0, "clicks": 0, "clicked": 0, "rr": 0.0})
        row["impressions"] += 1
        row["clicks"] += len(imp["clicks"])
        if imp["clicks"]:
            row["clicked"] += 1
            row["rr"] += 1.0 / (min(imp["clicks"]) + 1)
    base = per.get(default)
    out = {}
    for name, row in sorted(per.items()):
        n = row["impressions"]
        entry = {"impressions": n, "ctr": row["clicks"] / n, "abandonment": 1 - row["clicked"] / n,
                 "mrr_clicks": row["rr"] / n, "clicked_impressions": row["clicked"]}
        if base is not None and name != default:
            entry["p_vs_default"] = two_proportion_p(row["clicked"], n, base["clicked"], base["impressions"])
        out[name] = entry
    return out


def interleave_summary(impressions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from ranksearch.service.interleave import credit

    pairs: dict[tuple[str, str], dict[str, int]] = {}
    for imp in impressions:
        if imp["kind"] != "interleave":
            continue
        row = pairs.setdefault((imp["variant_a"], imp["variant_b"]),
                               {"a": 0, "b": 0, "tie": 0, "no_click": 0})
        if not imp["clicks"]:
            row["no_click"] += 1
        row[credit(imp["teams"], imp["clicks"])] += 1
    out = []
    for (a, b), row in sorted(pairs.items()):
        decided = row["a"] + row["b"]
        total = decided + row["tie"]
        lo, hi = wilson(row["a"], decided)
        out.append({"variant_a": a, "variant_b": b, "impressions": total, "wins_a": row["a"],
                    "wins_b": row["b"], "ties": row["tie"], "no_click": row["no_click"],
                    "preference_a": row["a"] / decided if decided else None,
                    "ci95": [lo, hi], "p_value": sign_test(row["a"], row["b"]),
                    "delta_ab": (row["a"] - row["b"]) / total if total else 0.0})
    return out


def shadow_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["primary"], r["shadow"]), []).append(r)
    out = []
    for (p, s), rs in sorted(groups.items()):
        taus = [r["tau"] for r in rs if r["tau"] is not None]
        pm = np.array([r["primary_ms"] for r in rs])
        sm = np.array([r["shadow_ms"] for r in rs])
        out.append({"primary": p, "shadow": s, "requests": len(rs),
                    "overlap_mean": float(np.mean([r["overlap"] for r in rs])),
                    "tau_mean": float(np.mean(taus)) if taus else None,
                    "primary_ms_p50": float(np.percentile(pm, 50)),
                    "primary_ms_p95": float(np.percentile(pm, 95)),
                    "shadow_ms_p50": float(np.percentile(sm, 50)),
                    "shadow_ms_p95": float(np.percentile(sm, 95))})
    return out


def readout(export: dict[str, Any], default: str = "") -> dict[str, Any]:
    return {"split": split_summary(export["impressions"], default),
            "interleave": interleave_summary(export["impressions"]),
            "shadow": shadow_summary(export["shadow"])}


def overlap_at_k(a: list[str], b: list[str], k: int) -> float:
    if k <= 0:
        return 1.0
    return len(set(a[:k]) & set(b[:k])) / k


def kendall_tau(a: list[str], b: list[str]) -> float | None:
    """Kendall's tau between the orders of the ids both lists share (None: < 2 shared)."""
    shared = [x for x in a if x in set(b)]
    if len(shared) < 2:
        return None
    pos_b = {x: i for i, x in enumerate(b)}
    ranks = [pos_b[x] for x in shared]
    conc = disc = 0
    for i in range(len(ranks)):
        for j in range(i + 1, len(ranks)):
            if ranks[i] < ranks[j]:
                conc += 1
            else:
                disc += 1
    return (conc - disc) / (conc + disc)
