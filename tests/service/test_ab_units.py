"""The pure parts of live experiments: sticky split, team-draft interleaving, click
attribution, readout statistics."""
from __future__ import annotations

import numpy as np
import pytest

from ranksearch.evaluation.online import (interleave_summary, kendall_tau, overlap_at_k, sign_test,
                                          split_summary, wilson)
from ranksearch.service.interleave import credit, team_draft
from ranksearch.service.routing import rendezvous

KEYS = [f"user-{i}" for i in range(20_000)]


def _shares(weights):
    picks = [rendezvous("c", k, weights) for k in KEYS]
    return picks, {v: picks.count(v) / len(picks) for v in weights}


def test_split_follows_the_weights_and_is_sticky():
    picks, shares = _shares({"a": 0.7, "b": 0.2, "c": 0.1})
    assert shares == pytest.approx({"a": 0.7, "b": 0.2, "c": 0.1}, abs=0.015)
    assert picks == [rendezvous("c", k, {"a": 0.7, "b": 0.2, "c": 0.1}) for k in KEYS]


def test_a_weight_change_moves_only_the_share_it_must():
    before, _ = _shares({"a": 0.9, "b": 0.1})
    after, shares = _shares({"a": 0.5, "b": 0.5})
    moved = [(x, y) for x, y in zip(before, after) if x != y]
    assert all(x == "a" and y == "b" for x, y in moved)  # nobody moves from b back to a
    assert len(moved) / len(KEYS) == pytest.approx(0.4, abs=0.015)  # 0.5 - 0.1
    # adding a third variant takes users from both others, never swaps a <-> b
    third, _ = _shares({"a": 0.5, "b": 0.5, "n": 0.25})
    assert all(y == "n" for x, y in zip(after, third) if x != y)


def test_team_draft_constructed_cases():
    # identical rankings: every document once, teams alternate in pairs
    out = team_draft(["1", "2", "3", "4"], ["1", "2", "3", "4"], 4, seed=0)
    assert [d for d, _ in out] == ["1", "2", "3", "4"]
    teams = [p.team for _, p in out]
    assert teams.count("a") == 2 and teams.count("b") == 2
    # disjoint rankings: each round adds one of each team, in rank order per team
    out = team_draft(["a1", "a2", "a3"], ["b1", "b2", "b3"], 6, seed=1)
    a_docs = [d for d, p in out if p.team == "a"]
    b_docs = [d for d, p in out if p.team == "b"]
    assert a_docs == ["a1", "a2", "a3"] and b_docs == ["b1", "b2", "b3"]
    for i in range(0, 6, 2):  # every prefix of even length is balanced
        assert {p.team for _, p in out[i:i + 2]} == {"a", "b"}
    # one team runs out: the other fills the list
    out = team_draft(["x"], ["y1", "y2", "y3"], 4, seed=2)
    assert sorted(d for d, _ in out) == ["x", "y1", "y2", "y3"]
    assert [p.source_rank for d, p in out if p.team == "b"] == [0, 1, 2]
    # deterministic per seed
    assert team_draft(["1", "2"], ["3", "4"], 4, 7) == team_draft(["1", "2"], ["3", "4"], 4, 7)


def test_credit_counts_clicks_per_team():
    teams = ["a", "b", "a", "b"]
    assert credit(teams, [0]) == "a"
    assert credit(teams, [1, 3]) == "b"
    assert credit(teams, [0, 1]) == "tie"
    assert credit(teams, []) == "tie"
    assert credit(teams, [0, 0, 0, 1]) == "tie"  # a repeated click counts once


def test_readout_statistics():
    assert sign_test(0, 0) == 1.0
    assert sign_test(20, 2) < 0.001 and sign_test(10, 10) == 1.0
    lo, hi = wilson(50, 100)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(0.19, abs=0.01)
    assert overlap_at_k(["1", "2", "3"], ["3", "2", "9"], 3) == pytest.approx(2 / 3)
    assert kendall_tau(["1", "2", "3"], ["1", "2", "3"]) == 1.0
    assert kendall_tau(["1", "2", "3"], ["3", "2", "1"]) == -1.0
    assert kendall_tau(["1"], ["1"]) is None
    imps = ([{"kind": "interleave", "variant_a": "x", "variant_b": "y", "teams": ["a", "b"],
              "clicks": [0]}] * 15 + [{"kind": "interleave", "variant_a": "x", "variant_b": "y",
                                       "teams": ["a", "b"], "clicks": [1]}] * 3 +
            [{"kind": "interleave", "variant_a": "x", "variant_b": "y", "teams": ["a", "b"], "clicks": []}] * 2)
    row, = interleave_summary(imps)
    assert (row["wins_a"], row["wins_b"], row["ties"], row["no_click"]) == (15, 3, 2, 2)
    assert row["preference_a"] == pytest.approx(15 / 18) and row["p_value"] < 0.01
    split = split_summary([{"kind": "split", "variant": "x", "clicks": [0], "teams": []},
                           {"kind": "split", "variant": "x", "clicks": [], "teams": []},
                           {"kind": "split", "variant": "y", "clicks": [2, 3], "teams": []}], "x")
    assert split["x"]["ctr"] == 0.5 and split["x"]["abandonment"] == 0.5
    assert split["y"]["mrr_clicks"] == pytest.approx(1 / 3) and "p_vs_default" in split["y"]
    assert np.isfinite(split["y"]["p_vs_default"])
