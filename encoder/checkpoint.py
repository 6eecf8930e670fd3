"""Training checkpoints that cannot run code: one safetensors file.

A checkpoint (model, optimizer and scheduler state, RNG state, step, losses, the
run's settings) is a nested structure of tensors, numbers, strings, lists and dicts.
Pickle (``torch.save``) would store it as a program that ``torch.load`` runs: a file
planted in a training folder could then execute anything. Here the tensors go into
a safetensors file, which holds only raw tensor bytes, and the structure around them
goes into that file's metadata as JSON, so loading is parsing, never execution. One
file keeps the write atomic (write a temporary file, fsync, rename).

Encoding of the structure (JSON): a tensor becomes ``{"__tensor__": "t<i>"}``, a
dict whose keys are not all strings (an optimizer's ``state`` is keyed by parameter
index) becomes ``{"__items__": [[key, value], ...]}``, a tuple becomes a list.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ranksearch.errors import FailedPrecondition

_META_KEY = "ranksearch.checkpoint"
FORMAT = 1


def _pack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()  # no shared storage
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _pack(v, tensors) for k, v in obj.items()}
        return {"__items__": [[k, _pack(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_pack(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def _unpack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {k: _unpack(v, tensors) for k, v in obj["__items__"]}
        return {k: _unpack(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unpack(v, tensors) for v in obj]
    return obj


def save_checkpoint(state: dict, path: Path) -> None:
    """Write `state` to `path` atomically (durable when this returns)."""
    tensors: dict[str, torch.Tensor] = {}
    structure = _pack(state, tensors)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps({"format": FORMAT, "state": structure})})
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; anything else (a pickle,
    a truncated file) raises FailedPrecondition naming the file. Nothing in the file
    is executed."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = (f.metadata() or {}).get(_META_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise FailedPrecondition("checkpoint", f"{path} is not a ranksearch checkpoint "
                                 f"(safetensors): {exc}") from None
    try:
        doc = json.loads(meta or "")
        state = _unpack(doc["state"], tensors)
    except (ValueError, KeyError, TypeError) as exc:
        raise FailedPrecondition("checkpoint", f"{path} has no readable ranksearch checkpoint "
                                 f"metadata ({type(exc).__name__}: {exc})") from None
    if doc.get("format") != FORMAT:
        raise FailedPrecondition("checkpoint", f"{path} has checkpoint format {doc.get('format')}, "
                                 f"this version reads {FORMAT}")
    return state
