"""Helpers for the indexer tests (imported by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

import threading

import numpy as np

from ranksearch.indexer import Document, Indexer, IndexSpec, VariantSpec


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """(n, d) random unit rows."""
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, n: int, d: int, centers: int = 20, noise: float = 0.35) -> np.ndarray:
    """(n, d) unit rows around `centers` directions: closer to real embeddings than
    isotropic noise, which has no cluster structure for IVF to exploit."""
    c = unit(rng, centers, d)
    x = c[rng.integers(0, centers, n)] + noise * rng.normal(size=(n, d)).astype(np.float32) / np.sqrt(d)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def docs(n: int, prefix: str = "d", meta=None) -> list[Document]:
    return [Document(f"{prefix}{i}", f"text {prefix}{i}", meta(i) if meta else {}) for i in range(n)]


def brute(queries: np.ndarray, x: np.ndarray, k: int, farthest: bool = False):
    """Exact top-k by cosine: (scores (q, k), rows (q, k))."""
    sims = queries @ x.T  # (q, n)
    order = np.argsort(sims if farthest else -sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


SPECS = {
    "flat": IndexSpec("flat"),
    "hnsw": IndexSpec("hnsw", {"M": 16, "efConstruction": 40}),
    "ivf": IndexSpec("ivf", {"nlist": 8, "nprobe": 2}),
}


def one_variant(ix: Indexer, kind: str = "flat", dim: int = 8, name: str = "c") -> None:
    ix.create_collection(name, [VariantSpec("v", dim, SPECS[kind])])


def in_thread(fn, timeout: float = 20.0):
    """Run fn in a thread and fail (instead of hanging) if it blocks."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"{fn} blocked for {timeout}s (a lock it should not wait for was held)"
    return out[0] if out else None
