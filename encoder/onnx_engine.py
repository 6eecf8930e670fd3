"""The ranked encoder through ONNX Runtime: the int8 engine, and fp32 on request.

ONNX Runtime fuses LayerNorm, GELU, bias adds and the attention's reshapes and runs
the graph without Python; its int8 matrix products use the CPU's VNNI kernels.
Measured side by side in benchmarks/encoder_throughput.py (--anchors).

The graph is exported from the loaded weights when the model is loaded (in memory,
nothing written next to the model): ``RankedEncoder.padded`` with every attention in
its ``explicit`` form, i.e. scores at the true rank width (no zero padding, which only
PyTorch's fused kernels need). Inputs ``input_ids``, ``attention_mask`` (b, t) int64
(+ ``token_type_ids`` when the encoder has token-type embeddings); output
``token_embeddings`` (b, t, d) float32. Padded positions carry values the pooling
ignores (the eager path returns zeros there).

int8: the exported graph's weight products rewritten by int8.py (int8 weights and
activations in blocks of 32 input features, activations per row: batch independent).
"""
from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .int8 import quantize_int8
from .model import RankedEncoder

OPSET = 17


class _Graph(nn.Module):
    """What is exported: embeddings + blocks on the padded layout."""

    def __init__(self, encoder: RankedEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        x = self.encoder.embed(input_ids, token_type_ids)  # (b, t, d)
        return self.encoder.padded(x, attention_mask.bool(), "explicit")


def export_onnx(encoder: RankedEncoder) -> bytes:
    """The encoder as an ONNX model (bytes), dynamic batch and sequence axes.

    Exports a copy: tracing the module itself left it computing different values
    afterwards (measured: cosine 0.88 against its own earlier output)."""
    encoder = copy.deepcopy(encoder).eval()
    names = ["input_ids", "attention_mask"]
    ids = torch.ones(2, 8, dtype=torch.long)  # (b, t) example; the axes stay dynamic
    args = [ids, torch.ones_like(ids)]
    if encoder.type_emb is not None:
        names.append("token_type_ids")
        args.append(torch.zeros_like(ids))
    axes = {n: {0: "batch", 1: "tokens"} for n in names + ["token_embeddings"]}
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python ints of shapes
        torch.onnx.export(_Graph(encoder), tuple(args), buf, input_names=names,
                          output_names=["token_embeddings"], dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
    return buf.getvalue()


class OrtEncoder:
    """Called like ``RankedEncoder(input_ids, attention_mask, token_type_ids)`` (inference
    only) but runs an ONNX Runtime session. ``session.run`` is thread-safe.
    ``quantize`` rewrites the exported graph for int8 (the served int8.quantize_int8;
    benchmarks pass others to compare quantisations)."""

    def __init__(self, encoder: RankedEncoder, precision: str = "fp32", threads: int | None = None,
                 quantize: Callable[[bytes], bytes] = quantize_int8):
        import onnxruntime as ort

        model = export_onnx(encoder)
        if precision == "int8":
            model = quantize(model)
        elif precision != "fp32":
            raise ValueError(f"ONNX Runtime serves fp32 or int8, not {precision!r}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only
        # Idle pool threads sleep instead of spinning: a spinning pool on cores that
        # other processes (FAISS, gRPC, other services) also need slows everyone down.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        self.precision = precision
        self._names = [i.name for i in self.session.get_inputs()]

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        given = {"input_ids": input_ids, "attention_mask": attention_mask,
                 "token_type_ids": token_type_ids}
        feeds = {n: np.ascontiguousarray(given[n].cpu().numpy(), dtype=np.int64) for n in self._names}
        (out,) = self.session.run(None, feeds)  # (b, t, d) float32
        return torch.from_numpy(out)
