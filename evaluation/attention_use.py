"""Does an encoder use its attention at all? (Small from-scratch encoders can keep
near-uniform attention, and then rank cannot matter; see docs/BACKGROUND.md.)

Two measurements, through forward hooks on every ``RankedAttention`` of the model:
- ``uniform_attention``: replace each attention output by uniform attention — the mean
  of the value vectors over the real (unpadded) key tokens, through ``out_proj`` —
  so the quality drop under this ablation says how much retrieval relies on attention;
- ``attention_entropy``: the entropy of each layer's attention distributions over the
  real keys, divided by log(number of real keys) (1.0 = uniform), averaged over heads
  and real query tokens.

Every inference path must pass through those hooks. ``RankedAttention`` has three:
``forward`` (what the hooks see), ``reference`` (explicit softmax) and
``forward_unpadded`` (the encoder's inference path for a padded batch, which runs on
the real tokens only and never calls ``forward``). While a measurement runs,
:func:`_through_forward` routes the other two through ``forward`` on the padded
layout, so a batch of texts of different lengths is measured exactly like one text
at a time.

Axes: b batch, t tokens, n real tokens of a batch, h heads, e value width, d model width.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch

from ranksearch.encoder.attention import RankedAttention


def attention_modules(model: torch.nn.Module) -> list[RankedAttention]:
    return [m for m in model.modules() if isinstance(m, RankedAttention)]


@contextlib.contextmanager
def _through_forward(mods: list[RankedAttention]):
    """Within the block, ``reference`` and ``forward_unpadded`` of each module call the
    module itself (``forward`` plus its hooks). Same outputs up to float rounding: all
    three paths compute the same attention (tested in tests/encoder)."""
    def unpadded(m):
        def run(z, idx, b, t, mask):                                       # z (n, d)
            x = z.new_zeros(b * t, z.shape[1]).index_copy_(0, idx, z).view(b, t, -1)  # (b, t, d)
            return m(x, mask).reshape(b * t, -1).index_select(0, idx)     # (n, d)
        return run

    for m in mods:
        m.forward_unpadded = unpadded(m)
        m.reference = m.__call__
    try:
        yield
    finally:
        for m in mods:  # drop the instance attributes: the class methods show again
            del m.forward_unpadded, m.reference


def _inputs(args: tuple, kwargs: dict):
    x = args[0] if args else kwargs["x"]
    mask = args[1] if len(args) > 1 else kwargs.get("mask")
    context = args[2] if len(args) > 2 else kwargs.get("context")
    return x, mask, context


def _uniform_hook(module: RankedAttention, args, kwargs, output):
    x, mask, context = _inputs(args, kwargs)
    ctx = x if context is None else context
    v = module._split(module.v_proj(ctx), module.value_dim)           # (b, h, tk, e)
    if mask is None:
        mean = v.mean(dim=2, keepdim=True)                            # (b, h, 1, e)
    else:
        w = mask[:, None, :, None].to(v.dtype)                        # (b, 1, tk, 1)
        mean = (v * w).sum(2, keepdim=True) / w.sum(2, keepdim=True).clamp(min=1)
    o = mean.expand(-1, -1, x.shape[1], -1)                           # (b, h, tq, e)
    return module._merge(o)                                           # (b, tq, d)


@contextlib.contextmanager
def uniform_attention(model: torch.nn.Module):
    """Within the block, every RankedAttention of ``model`` attends uniformly, on
    every inference path."""
    mods = attention_modules(model)
    if not mods:
        raise ValueError("model has no RankedAttention modules")
    handles = [m.register_forward_hook(_uniform_hook, with_kwargs=True) for m in mods]
    try:
        with _through_forward(mods):
            yield len(handles)
    finally:
        for h in handles:
            h.remove()


def attention_entropy(model: torch.nn.Module, encode, texts: Sequence[str]) -> list[float]:
    """Normalised attention entropy per layer (in module order) while ``encode(texts)``
    runs. 1.0 means uniform over the real keys; near 0 means one key per query."""
    mods = attention_modules(model)
    sums = [0.0] * len(mods)
    counts = [0] * len(mods)

    def make_hook(i):
        def hook(module, args, kwargs, output):
            x, mask, context = _inputs(args, kwargs)
            with torch.no_grad():
                p = torch.softmax(module.scores(x, context, mask), dim=-1)  # (b, h, tq, tk)
                ent = -(p * torch.log(p.clamp(min=1e-12))).sum(-1)          # (b, h, tq)
                if mask is None:
                    n_keys = torch.full(x.shape[:1], p.shape[-1], dtype=p.dtype)
                    real_q = torch.ones(x.shape[:2], dtype=torch.bool)
                else:
                    n_keys = mask.sum(-1).to(p.dtype)                        # (b,)
                    real_q = mask.to(torch.bool) if context is None else \
                        torch.ones(x.shape[:2], dtype=torch.bool)
                norm = torch.log(n_keys.clamp(min=2))[:, None, None]        # (b, 1, 1)
                ent = (ent / norm).mean(1)                                   # (b, tq)
                sums[i] += float(ent[real_q].sum())
                counts[i] += int(real_q.sum())
        return hook

    handles = [m.register_forward_hook(make_hook(i), with_kwargs=True) for i, m in enumerate(mods)]
    try:
        with _through_forward(mods):
            encode(list(texts))
    finally:
        for h in handles:
            h.remove()
    return [s / c if c else math.nan for s, c in zip(sums, counts)]
