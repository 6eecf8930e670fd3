"""Team-draft interleaving (Radlinski, Kurup & Joachims, CIKM 2008) and click
attribution.

Two rankings A and B are merged into one list: in each round the team that has
contributed fewer documents so far (a coin toss on ties) adds its best document
not yet shown. Every shown document remembers the team that placed it. A click on
a document credits its team; the team with more clicks on an impression wins it.
Over many impressions, a sign test on wins says which ranking users prefer.
Chapelle et al. (TOIS 2012) found this needs far fewer impressions than comparing
two A/B buckets' click-through rates.

Pure functions, no I/O: the service stores what they return.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Placed:
    """One entry of an interleaved list: the team ('a' or 'b') and the index of the
    entry in that team's own ranking."""

    team: str
    source_rank: int


def seed_of(query_id: str) -> int:
    """A deterministic seed for the coin tosses of one query (tests replay it)."""
    return int.from_bytes(hashlib.sha256(query_id.encode()).digest()[:8], "big")


def team_draft(a_ids: Sequence[str], b_ids: Sequence[str], k: int, seed: int) -> list[tuple[str, Placed]]:
    """Interleave two rankings of ids into at most ``k`` entries.

    Returns [(id, Placed)] in display order. A document in both rankings appears
    once, credited to the team that placed it first."""
    rng = random.Random(seed)
    shown: set[str] = set()
    out: list[tuple[str, Placed]] = []
    count = {"a": 0, "b": 0}
    pos = {"a": 0, "b": 0}
    lists = {"a": list(a_ids), "b": list(b_ids)}

    def next_unshown(team: str) -> int | None:
        seq = lists[team]
        while pos[team] < len(seq) and seq[pos[team]] in shown:
            pos[team] += 1
        return pos[team] if pos[team] < len(seq) else None

    while len(out) < k:
        has_a, has_b = next_unshown("a") is not None, next_unshown("b") is not None
        if not has_a and not has_b:
            break
        if count["a"] < count["b"]:
            team = "a"
        elif count["b"] < count["a"]:
            team = "b"
        else:
            team = "a" if rng.random() < 0.5 else "b"
        if next_unshown(team) is None:  # that team is exhausted: the other one fills
            team = "b" if team == "a" else "a"
        i = next_unshown(team)
        doc_id = lists[team][i]
        shown.add(doc_id)
        out.append((doc_id, Placed(team, i)))
        count[team] += 1
        pos[team] += 1
    return out


def credit(teams: Sequence[str], clicked_positions: Sequence[int]) -> str:
    """Winner of one impression: 'a', 'b' or 'tie' (also when nothing was clicked).

    ``teams[i]`` is the team of displayed position i; positions out of range are
    ignored (the caller validates them)."""
    a = sum(1 for p in set(clicked_positions) if 0 <= p < len(teams) and teams[p] == "a")
    b = sum(1 for p in set(clicked_positions) if 0 <= p < len(teams) and teams[p] == "b")
    return "a" if a > b else "b" if b > a else "tie"
