"""Which variant answers a search that names none: the default, or a weighted split.

Weights live in ``<data_dir>/service/routing.json`` ({collection: {variant: weight}}),
written atomically; the indexer's VariantSpec has no weight field. The split is
deterministic: sha256(routing key) picks a point in [0, 1) that falls into one
variant's share (variants sorted by name), so a user keeps seeing the same variant.
"""
from __future__ import annotations

import hashlib
import json
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
        total = sum(weights.values())
        digest = hashlib.sha256(f"{collection}\0{key}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * total
        for name in sorted(weights):
            point -= weights[name]
            if point < 0:
                return name
        return sorted(weights)[-1]

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(self._weights, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
