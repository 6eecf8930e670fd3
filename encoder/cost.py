"""Analytic cost of an encoder config: parameters per part, FLOPs per token, bytes.

FLOPs count a multiply-add as 2 (the convention of ``torch.utils.flop_counter``) and
cover the matrix products only; embedding lookups, LayerNorm, softmax, GELU, bias adds
and pooling are O(d) per token and left out (FlopCounterMode leaves them out too).

Per layer and per token, at sequence length T:
    q, k projections   2 · 2·d·h·r
    scoring q·k        2 · h·r·T        <- the only term that grows with T and rank
    weighted sum p·v   2 · h·e·T
    v, out projections 2 · 2·d·h·e
    feed-forward       2 · 2·d·f
"""
from __future__ import annotations

from pathlib import Path

from .config import EncoderConfig

BYTES_PER_PARAM = 4  # float32 weights


def parameter_counts(c: EncoderConfig) -> dict[str, int]:
    """Parameters per part; ``total`` is their sum."""
    d, h, e, f = c.d_model, c.heads, c.value_dim, c.ffn_dim
    parts = {
        "embeddings": (c.vocab_size + c.max_len + c.type_vocab_size) * d,
        "attention_qk": sum(2 * (d * h * r + h * r) for r in c.ranks),
        "attention_vo": c.layers * ((d * h * e + h * e) + (h * e * d + d)),
        "ffn": c.layers * (d * f + f + f * d + d),
        # embedding LayerNorm, two per block, and the final one of the pre-norm layout
        "norms": 2 * d * (1 + 2 * c.layers + (c.norm == "pre")),
    }
    parts["total"] = sum(parts.values())
    return parts


def flops_per_token(c: EncoderConfig, seq_len: int) -> dict[str, int]:
    """Forward FLOPs per token for a sequence of ``seq_len`` tokens, per part."""
    d, h, e, f, t = c.d_model, c.heads, c.value_dim, c.ffn_dim, seq_len
    parts = {
        "attention_qk_proj": sum(2 * 2 * d * h * r for r in c.ranks),
        "attention_scoring": sum(2 * h * r * t for r in c.ranks),
        "attention_weighted_sum": c.layers * 2 * h * e * t,
        "attention_vo_proj": c.layers * 2 * 2 * d * h * e,
        "ffn": c.layers * 2 * 2 * d * f,
    }
    parts["total"] = sum(parts.values())
    return parts


def cost_report(config: EncoderConfig, seq_len: int = 128) -> dict:
    params = parameter_counts(config)
    return {
        "seq_len": seq_len,
        "parameters": params,
        "flops_per_token": flops_per_token(config, seq_len),
        "weights_bytes": params["total"] * BYTES_PER_PARAM,
    }


def size_on_disk(folder: str | Path) -> int:
    """Bytes of every file under a model folder."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
