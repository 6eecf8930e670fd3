"""Which variant answers a search that names none: the default, or a weighted split.

Weights live in ``<data_dir>/service/routing.json`` ({collection: {variant: weight}}),
written atomically; the indexer's VariantSpec has no weight field.

The split is sticky and moves as few users as possible when weights change: weighted
rendezvous hashing (Schindelhauer & Schomaker, 2005). Each (key, variant) pair gets a
uniform u = sha256(collection, variant, key) in (0, 1); the variant with the smallest
-ln(u)/weight wins. A key lands on a variant with probability weight/total, the same
key always gets the same variant, and raising one variant's weight only moves keys
*to* that variant (no reshuffle among the others), unlike cutting [0, 1) into
intervals, where one weight change shifts every boundary after it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from pathlib import Path


class RoutingTable:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._weights: dict[str, dict[str, float]] = {}
        if path.exists():
            self._weights = json.loads(path.read_text())

    def weights(self, collection: str) -> dict[str, float]:
        return dict(self._weights.get(collection, {}))

    def set_weights(self, collection: str, weights: dict[str, float]) -> None:
        with self._lock:
            clean = {k: float(v) for k, v in weights.items() if v > 0}
            if clean:
                self._weights[collection] = clean
            else:
                self._weights.pop(collection, None)
            self._save()

    def drop(self, collection: str) -> None:
        with self._lock:
            if self._weights.pop(collection, None) is not None:
                self._save()

    def choose(self, collection: str, default: str, key: str) -> str:
        """The variant for a search without an explicit one."""
        weights = self._weights.get(collection)
        if not weights:
            return default
        return rendezvous(collection, key, weights)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(self._weights, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


def rendezvous(collection: str, key: str, weights: dict[str, float]) -> str:
    """The variant for ``key`` under weighted rendezvous hashing (weights > 0)."""
    best, best_score = "", math.inf
    for name in sorted(weights):
        w = weights[name]
        if w <= 0:
            continue
        digest = hashlib.sha256(f"{collection}\0{name}\0{key}".encode()).digest()
        u = (int.from_bytes(digest[:8], "big") + 0.5) / 2**64  # (0, 1), never 0
        score = -math.log(u) / w
        if score < best_score:
            best, best_score = name, score
    return best
