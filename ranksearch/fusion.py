"""Rank fusion of retrieval runs: reciprocal-rank fusion and weighted normalised sums.

A run is a ranking of one retriever for one query: keys (document seqs or ids) in
rank order with their scores, best first. Pure functions, no I/O, so the served
hybrid search and the evaluation harness fuse alike; tests check them against
ranx's ``fuse`` (``rrf``; ``wsum`` with ``min-max`` / ``zmuv`` normalisation).

- ``rrf``: fused(d) = sum_i w_i / (k + rank_i(d)), rank 1-based; a run that does
  not contain d adds nothing (Cormack, Clarke & Buettcher, SIGIR 2009; k = 60 there).
- ``weighted``: each run's scores are normalised, then fused(d) = sum_i w_i * norm_i(d)
  over the runs that contain d. ``minmax``: (s - min) / (max - min), 0 when all are
  equal; ``zscore``: (s - mean) / std (population std), 0 when std is 0.

Ties in the fused score are broken by the key, ascending, so a fused ranking is
deterministic.
"""
from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

Run = Sequence[tuple[Hashable, float]]  # (key, score), best first


def rrf(runs: Sequence[Run], weights: Sequence[float], k: float = 60.0) -> list[tuple[Hashable, float]]:
    """Reciprocal-rank fusion; returns (key, fused score), best first."""
    fused: dict[Hashable, float] = {}
    for run, weight in zip(runs, weights, strict=True):
        for rank, (key, _) in enumerate(run, start=1):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return _ranked(fused)


def normalise(scores: np.ndarray, method: str) -> np.ndarray:
    """(n,) scores -> (n,) normalised (``minmax`` or ``zscore``)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    if method == "minmax":
        low, span = scores.min(), scores.max() - scores.min()
        return (scores - low) / span if span > 0 else np.zeros_like(scores)
    if method == "zscore":
        std = scores.std()
        return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)
    raise ValueError(f"unknown normalisation {method!r} (known: minmax, zscore)")


def weighted(runs: Sequence[Run], weights: Sequence[float], method: str = "minmax") -> list[tuple[Hashable, float]]:
    """Weighted sum of normalised scores; returns (key, fused score), best first."""
    fused: dict[Hashable, float] = {}
    for run, weight in zip(runs, weights, strict=True):
        if not run:
            continue
        norm = normalise(np.array([s for _, s in run]), method)  # (n,)
        for (key, _), value in zip(run, norm.tolist()):
            fused[key] = fused.get(key, 0.0) + weight * value
    return _ranked(fused)


def fuse(runs: Sequence[Run], weights: Sequence[float], fusion: str = "rrf", k: float = 60.0,
         normalization: str = "minmax") -> list[tuple[Hashable, float]]:
    """``rrf`` (with ``k``) or ``weighted`` (with ``normalization``)."""
    if fusion == "rrf":
        return rrf(runs, weights, k)
    if fusion == "weighted":
        return weighted(runs, weights, normalization)
    raise ValueError(f"unknown fusion {fusion!r} (known: rrf, weighted)")


def _ranked(fused: dict[Hashable, float]) -> list[tuple[Hashable, float]]:
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
