"""How many impressions a split A/B test and team-draft interleaving need to detect
the better of two rank variants, with simulated users.

Rankings: the TREC run files of an offline evaluation of the two variants (by
default all-MiniLM-L6-v2 at full rank vs rank 4 on the stdlib corpus; make them with
    ranksearch eval --corpus stdlib --spec evaluation/specs/ab_full_vs_r4.yaml --out results/ab
). Relevance: that corpus's test qrels.

Users: a position-based click model. A user looks at position i (0-based) with
probability 1/(i+1) and clicks what they look at with probability 0.9 if it is
relevant, 0.05 if it is not (noise). Each impression draws a test query at random.
- Split A/B: the impression is served by A or B (fair coin); the outcome is
  "impression had a click"; a two-proportion z-test compares the two CTRs.
- Interleaving: the impression is a team-draft interleaving of A and B (the
  service's own `team_draft` and `credit`); an exact sign test compares wins.
Both tests are checked every 25 impressions; the first checkpoint where p < 0.05
with the better variant ahead counts as detection. Repeated over seeds; prints the
median impressions to detection, the share of runs that detected the better variant
within the budget, and how often the worse one was declared better (false winner).

    .venv/bin/python benchmarks/ab_simulation.py --results results/ab [--runs 40] [--budget 4000]
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

from ranksearch.encoder.corpus import load_beir, resolve_corpus
from ranksearch.evaluation.metrics import read_trec
from ranksearch.evaluation.online import sign_test, two_proportion_p
from ranksearch.service.interleave import credit, team_draft

K = 10


def rankings(run: dict[str, dict[str, float]]) -> dict[str, list[str]]:
    return {q: [d for d, _ in sorted(docs.items(), key=lambda x: -x[1])][:K] for q, docs in run.items()}


def clicks(ids: list[str], relevant: set[str], rng: random.Random) -> list[int]:
    out = []
    for i, doc in enumerate(ids):
        if rng.random() < 1.0 / (i + 1):
            if rng.random() < (0.9 if doc in relevant else 0.05):
                out.append(i)
    return out


def split_run(a, b, qrels, queries, budget, rng, better):
    n = {"a": 0, "b": 0}
    clicked = {"a": 0, "b": 0}
    for t in range(1, budget + 1):
        q = rng.choice(queries)
        side = "a" if rng.random() < 0.5 else "b"
        ids = (a if side == "a" else b)[q]
        n[side] += 1
        clicked[side] += bool(clicks(ids, qrels[q], rng))
        if t % 25 == 0:
            p = two_proportion_p(clicked["a"], n["a"], clicked["b"], n["b"])
            if p < 0.05 and n["a"] and n["b"]:
                ahead = "a" if clicked["a"] / n["a"] > clicked["b"] / n["b"] else "b"
                return t, ahead == better
    return None, None


def interleave_run(a, b, qrels, queries, budget, rng, better):
    wins = {"a": 0, "b": 0, "tie": 0}
    for t in range(1, budget + 1):
        q = rng.choice(queries)
        merged = team_draft(a[q], b[q], K, rng.getrandbits(64))
        shown = [d for d, _ in merged]
        wins[credit([p.team for _, p in merged], clicks(shown, qrels[q], rng))] += 1
        if t % 25 == 0 and sign_test(wins["a"], wins["b"]) < 0.05:
            return t, ("a" if wins["a"] > wins["b"] else "b") == better
    return None, None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, required=True, help="results folder of `ranksearch eval`")
    ap.add_argument("--corpus", default="stdlib", help="the corpus it was run on (for qrels)")
    ap.add_argument("--a", default="full", help="variant A (run file name)")
    ap.add_argument("--b", default="r4", help="variant B")
    ap.add_argument("--runs", type=int, default=40, help="repetitions per method")
    ap.add_argument("--budget", type=int, default=4000, help="impressions per repetition at most")
    args = ap.parse_args(argv)
    runs_dir = args.results / "runs"
    files = {v: next(iter(sorted(runs_dir.glob(f"{v}*.trec"))), None) for v in (args.a, args.b)}
    if None in files.values():
        print(f"missing run files for {args.a}/{args.b} in {runs_dir}", file=sys.stderr)
        return 2
    a, b = (rankings(read_trec(files[v])) for v in (args.a, args.b))
    beir = load_beir(resolve_corpus(args.corpus), split="test")
    qrels = {q: {d for d, s in docs.items() if s > 0} for q, docs in beir.qrels.items()}
    queries = sorted(set(qrels) & set(a) & set(b))

    def offline_ctr(r):  # expected clicked share under the click model, exactly
        total = 0.0
        for q in queries:
            p_none = 1.0
            for i, d in enumerate(r[q]):
                p_none *= 1 - (1 / (i + 1)) * (0.9 if d in qrels[q] else 0.05)
            total += 1 - p_none
        return total / len(queries)

    ctr_a, ctr_b = offline_ctr(a), offline_ctr(b)
    better = "a" if ctr_a > ctr_b else "b"
    print(f"{len(queries)} judged queries; expected CTR {args.a} {ctr_a:.3f}, {args.b} {ctr_b:.3f} "
          f"(better: {args.a if better == 'a' else args.b})")
    print(f"{'method':<14}{'median impressions':>20}{'detected':>10}{'false winner':>14}  (runs {args.runs}, "
          f"budget {args.budget})")
    medians = {}
    for name, method in (("split A/B", split_run), ("interleaving", interleave_run)):
        found, right, wrong = [], 0, 0
        for seed in range(args.runs):
            t, correct = method(a, b, qrels, queries, args.budget, random.Random(seed), better)
            if t is not None:
                found.append(t)
                right += bool(correct)
                wrong += not correct
        med = float(np.median(found)) if found else float("nan")
        medians[name] = med
        print(f"{name:<14}{med:>20.0f}{right / args.runs:>10.0%}{wrong / args.runs:>14.0%}")
    if all(np.isfinite(list(medians.values()))):
        print(f"interleaving needed {medians['split A/B'] / medians['interleaving']:.1f}x fewer "
              "impressions (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
