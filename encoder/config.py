"""Typed encoder configuration: presets, overrides, validation in one place.

``EncoderConfig.preset("small", rank=8)`` gives the small preset with query/key
width 8 in every layer; ``rank=[8, 32]`` sets it per layer. Unknown keys and
impossible values raise ``ConfigError`` naming the setting.
"""
from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields
from typing import Any

from ranksearch.errors import ConfigError
from ranksearch.typed import reject_unknown

_NORMS = ("post", "pre")
_POOLINGS = ("mean", "cls")


@dataclass
class EncoderConfig:
    vocab_size: int = 30522
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    rank: int | list[int] = 32      # query/key width per head; one int, or one per layer
    value_dim: int = 32             # value width per head
    ffn_dim: int = 512
    max_len: int = 256              # position embeddings
    type_vocab_size: int = 0        # 0 = no token-type embeddings (BERT uses 2)
    norm: str = "post"              # "post" (BERT layout) or "pre"
    pooling: str = "mean"           # "mean" over real tokens, or "cls"
    dropout: float = 0.1
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "layers", "heads", "value_dim", "ffn_dim",
                     "max_len"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("type_vocab_size", self.type_vocab_size, minimum=0)
        if isinstance(self.rank, (list, tuple)):
            self.rank = list(self.rank)
            if len(self.rank) != self.layers:
                raise ConfigError("rank", f"has {len(self.rank)} entries but layers is "
                                  f"{self.layers}; give one rank per layer or a single int")
            for i, r in enumerate(self.rank):
                _check_int(f"rank[{i}]", r, minimum=1)
        else:
            _check_int("rank", self.rank, minimum=1)
        if self.norm not in _NORMS:
            raise ConfigError("norm", f"must be one of {_NORMS}, got {self.norm!r}")
        if self.pooling not in _POOLINGS:
            raise ConfigError("pooling", f"must be one of {_POOLINGS}, got {self.pooling!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout", f"must be a number in [0, 1), got {self.dropout!r}")
        if isinstance(self.layer_norm_eps, bool) or not isinstance(self.layer_norm_eps, (int, float)) \
                or self.layer_norm_eps <= 0:
            raise ConfigError("layer_norm_eps", f"must be > 0, got {self.layer_norm_eps!r}")

    # ---- derived values -------------------------------------------------------------
    @property
    def ranks(self) -> list[int]:
        """Query/key width per head, one entry per layer."""
        return list(self.rank) if isinstance(self.rank, list) else [self.rank] * self.layers

    @property
    def head_width(self) -> int:
        """The conventional per-head width d_model / heads (BERT's r and e)."""
        return self.d_model // self.heads

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "EncoderConfig":
        if name not in PRESETS:
            close = difflib.get_close_matches(name, PRESETS, n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise ConfigError("preset", f"unknown preset {name!r}; known: "
                              f"{sorted(PRESETS)}{hint}")
        return cls.from_dict({**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EncoderConfig":
        reject_unknown(data, [f.name for f in fields(cls)])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **overrides: Any) -> "EncoderConfig":
        return EncoderConfig.from_dict({**self.to_dict(), **overrides})


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(name, f"must be >= {minimum}, got {value}")


PRESETS: dict[str, dict[str, Any]] = {
    # unit tests and smoke runs
    "tiny": dict(d_model=32, layers=2, heads=2, rank=16, value_dim=16, ffn_dim=64,
                 max_len=128),
    # trains from scratch on 2 CPU cores in minutes
    "small": dict(d_model=128, layers=2, heads=4, rank=32, value_dim=32, ffn_dim=512,
                  max_len=256),
    # the shape of all-MiniLM-L6-v2 (the default converted model)
    "minilm": dict(d_model=384, layers=6, heads=12, rank=32, value_dim=32, ffn_dim=1536,
                   max_len=512, type_vocab_size=2),
    # the shape of BERT-base
    "base": dict(d_model=768, layers=12, heads=12, rank=64, value_dim=64, ffn_dim=3072,
                 max_len=512, type_vocab_size=2),
}
