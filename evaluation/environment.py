"""What a results file records about where it was measured: hardware, thread count,
package versions and the git revision of the code."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path

from ranksearch.service.version import runtime_versions

PACKAGES = ("ranksearch", "torch", "numpy", "sentence-transformers", "transformers",
            "tokenizers", "faiss-cpu", "ranx", "bm25s", "matplotlib")


def versions() -> dict[str, str]:
    return runtime_versions(PACKAGES)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict:
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:  # other work on the machine skews latency: record how busy it was
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": usable,
            "load_average_1_5_15min": load,
            "torch_threads": torch.get_num_threads(), "memory_bytes": mem,
            "platform": platform.platform(), "machine": platform.machine()}


def git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
