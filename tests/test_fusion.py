"""ranksearch.fusion against ranx's fuse (an independent implementation): RRF and
weighted sums with min-max and z-score normalisation, over random runs."""
from __future__ import annotations

import numpy as np
import pytest

from ranksearch import fusion


def _runs(seed: int) -> list[list[tuple[str, float]]]:
    """Two runs of 20 documents out of 40, distinct scores, best first."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(2):
        ids = rng.choice(40, size=20, replace=False)
        scores = np.sort(rng.uniform(0, 10, size=20))[::-1]
        out.append([(f"d{int(i):02d}", float(s)) for i, s in zip(ids, scores)])
    return out


def _ranx(runs, **kw) -> dict[str, float]:
    from ranx import Run, fuse

    return fuse([Run({"q": dict(run)}) for run in runs], **kw).to_dict()["q"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rrf_equals_ranx(seed):
    runs = _runs(seed)
    ours = dict(fusion.rrf(runs, [1.0, 1.0], k=60))
    assert ours == pytest.approx(_ranx(runs, method="rrf", params={"k": 60}), abs=1e-12)


@pytest.mark.parametrize("method, ranx_norm", [("minmax", "min-max"), ("zscore", "zmuv")])
def test_weighted_sum_equals_ranx_wsum(method, ranx_norm):
    runs = _runs(5)
    ours = dict(fusion.weighted(runs, [0.3, 0.7], method))
    want = _ranx(runs, method="wsum", norm=ranx_norm, params={"weights": [0.3, 0.7]})
    assert ours == pytest.approx(want, abs=1e-9)


def test_weighted_rrf_and_deterministic_ties():
    a, b = [("x", 3.0), ("y", 2.0)], [("y", 9.0), ("x", 1.0)]
    assert fusion.rrf([a, b], [2.0, 1.0], k=1) == [("x", 2 / 2 + 1 / 3), ("y", 2 / 3 + 1 / 2)]
    # equal fused scores are ordered by key
    assert [k for k, _ in fusion.rrf([a, b], [1.0, 1.0], k=1)] == ["x", "y"]
    assert fusion.weighted([[("z", 5.0)], []], [1.0, 1.0]) == [("z", 0.0)]  # one candidate: min = max
    with pytest.raises(ValueError, match="unknown fusion"):
        fusion.fuse([a], [1.0], "sum")
