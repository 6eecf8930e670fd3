"""CPU serving: linear layers with their weights reordered once for oneDNN.

A bfloat16 ``F.linear`` on CPU reorders its weight into oneDNN's blocked layout on
every call; for a single query (a few tokens) that reorder costs more than the product
itself. In fp32 the prepacked product also beats MKL's (a lone query ~0.7x the CPU
time, a 32-query pass ~0.9x). ``pack(encoder)`` replaces every ``nn.Linear`` of a
fp32 or bf16 ``RankedEncoder``, and
each attention's fused q/k/v projection, by ``PackedLinear``: the weight reordered once
at load time (``torch.ops.mkldnn._reorder_linear_weight``) and multiplied with
``torch.ops.mkldnn._linear_pointwise`` -- the pair PyTorch's own compiler
(``torch.compile`` with ``freezing``) emits for the same layers, without compiling.
Same products, same arithmetic: the outputs equal the unpacked module's within
float rounding (tests/encoder/test_precision.py). Measured in benchmarks/anchors.py.

Inference only (the packed weights have no gradient and ignore later weight updates).
Where oneDNN or the ops are absent, ``available()`` is False and nothing is packed.
"""
from __future__ import annotations

import torch
from torch import nn

from .model import RankedEncoder


def available() -> bool:
    ops = torch.ops.mkldnn
    return (torch.backends.mkldnn.is_available() and hasattr(ops, "_reorder_linear_weight")
            and hasattr(ops, "_linear_pointwise"))


class PackedLinear(nn.Module):
    """``y = x W^T + b`` with W (out, in) fp32 or bf16 held in oneDNN's layout; x (..., in).
    ``weight``/``bias`` stay as they were (parameter counts, state dicts); the packed
    copy is a non-persistent buffer."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.weight, self.bias = weight, bias
        self.register_buffer("packed", torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.detach()
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, bias, "none", [], "")


def pack(encoder: RankedEncoder) -> int:
    """Pack every linear layer of a fp32 or bf16, CPU, eval-mode encoder in place; returns how
    many products were packed (0 where unavailable)."""
    if not available():
        return 0
    count = 0
    for block in encoder.blocks:
        attn = block.attn
        attn.__dict__["packed_qkv"] = PackedLinear(*attn._fused_qkv())  # plain attribute: not a submodule
        count += 1
        for parent, name in ((attn, "out_proj"), (block.ffn, "up"), (block.ffn, "down")):
            linear = getattr(parent, name)
            setattr(parent, name, PackedLinear(linear.weight, linear.bias))
            count += 1
    return count
