"""Numeric precision of encoding, and what this machine can run fast.

Three precisions, one meaning everywhere (service variants, harness specs,
``ranksearch embed``):

- ``fp32``: float32 end to end, eager PyTorch (ONNX Runtime on request: engine
  "onnxruntime", see onnx_engine.py; as fast on whole batches, but it gained nothing
  from the service's micro-batching where PyTorch's padded-batch path does).
- ``bf16``: a ranked encoder's weights in bfloat16, its linear layers prepacked once
  for oneDNN on CPU (packed.py); LayerNorm and softmax accumulate in float32 inside
  their kernels, pooling runs in float32 (a plain BERT folder runs under
  ``torch.autocast`` instead). Only fast where the CPU multiplies bf16 natively (AVX-512 BF16
  or AMX); elsewhere bf16 is emulated and slower than fp32, so it is never used
  silently there: the request falls back to fp32 with a WARNING log line, and the
  effective precision is reported (Stats, describe()).
- ``int8``: weights and activations in int8, in blocks of 32 input features, the
  activations quantised per token at run time so that a text's vector does not depend
  on its batch (ONNX Runtime MatMulNBits, VNNI kernels; int8.py). Changes the vectors
  more than bf16 does; the harness reports its quality next to fp32.

Vectors are always returned as float32 rows of unit length, whatever the precision.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from ranksearch.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "int8")
DEVICES = ("cpu", "cuda")
#: /proc/cpuinfo flags that mean native bf16 dot products
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")

log = logging.getLogger("ranksearch.encoder")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of this machine (empty where /proc/cpuinfo is absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16(device: str, flags: frozenset[str] | None = None) -> bool:
    """True where bf16 matrix products run natively on ``device``."""
    if device == "cuda":
        import torch
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in BF16_CPU_FLAGS)


def check(precision: str, device: str = "cpu", field: str = "precision") -> None:
    """Reject unknown names (ConfigError naming ``field``)."""
    if precision not in PRECISIONS:
        raise ConfigError(field, f"must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if device not in DEVICES:
        raise ConfigError("device", f"must be one of {', '.join(DEVICES)}, got {device!r}")


def resolve(precision: str, device: str = "cpu", *, strict: bool = False,
            flags: frozenset[str] | None = None) -> str:
    """The precision to run: ``precision`` itself, or ``fp32`` with a WARNING where bf16
    would be emulated (``strict=True`` refuses instead). int8 is a CPU precision: on
    cuda it is refused."""
    check(precision, device)
    if device == "cuda" and precision == "int8":
        raise ConfigError("precision", "int8 runs on CPU only (ONNX Runtime); use fp32 or bf16 on cuda")
    if precision == "bf16" and not native_bf16(device, flags):
        why = (f"this CPU has none of {', '.join(BF16_CPU_FLAGS)}" if device == "cpu"
               else "this GPU does not support bf16")
        if strict:
            raise ConfigError("precision", f"bf16 requested but {why}; bf16 would be emulated "
                              "and slower than fp32. Use fp32 (or int8 on CPU)")
        log.warning("precision bf16 requested but %s: falling back to fp32 "
                    "(emulated bf16 would be slower than fp32)", why)
        return "fp32"
    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise ConfigError("device", "cuda requested but torch sees no GPU "
                              f"(torch {torch.__version__}; install with `make install TORCH=cuda`)")
    return precision
