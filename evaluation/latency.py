"""Timing and memory helpers: per-call latencies (ms) with a warm-up, percentiles,
peak resident memory. Single calls, fixed thread count (FIELD_NOTES: tail latency
needs a warm-up and a fixed thread count)."""
from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

WARMUP = 5


def time_calls(fn: Callable[[object], object], items: Sequence, warmup: int = WARMUP) -> list[float]:
    """Milliseconds per call of ``fn(item)`` for each item, after ``warmup`` untimed calls."""
    for item in list(items)[:warmup]:
        fn(item)
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def percentiles(ms: Sequence[float]) -> dict:
    if not len(ms):
        return {"p50_ms": None, "p95_ms": None, "mean_ms": None, "n": 0}
    a = np.asarray(ms, dtype=float)
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
            "mean_ms": float(a.mean()), "n": int(len(a))}


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def dir_size(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
