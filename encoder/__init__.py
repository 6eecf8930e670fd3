"""ranksearch.encoder: the rank-configurable text encoder.

Public names are imported lazily, so ``import ranksearch.encoder`` (and the CLI's
``--help``) does not pull in torch or sentence-transformers.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "RankedAttention": "attention",
    "EncoderConfig": "config",
    "PRESETS": "config",
    "RankedEncoder": "model",
    "RankedEncoderModule": "st_module",
    "MODULE_CLASSES": "st_module",
    "new_sentence_transformer": "st_module",
    "load_sentence_transformer": "st_module",
    "Embedder": "embedder",
    "load_encoder": "embedder",
    "convert_model": "convert",
    "ensure_default_model": "default_model",
    "cost_report": "cost",
    "parameter_counts": "cost",
    "flops_per_token": "cost",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
