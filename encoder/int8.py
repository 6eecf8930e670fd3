"""int8 as served: block-wise int8 weights and per-row, block-wise int8 activations.

Every matrix product with a constant weight in the exported graph (q/k/v, attention
output, feed-forward up and down; not the attention's scores, whose operands are both
activations) becomes ONNX Runtime's ``MatMulNBits`` (com.microsoft) with 8-bit weights
and ``accuracy_level=4``:

- weights: symmetric int8 in blocks of ``BLOCK`` consecutive input features, one
  float32 scale per output feature and block (``max |w| / 127``), quantised once when
  the model is loaded;
- activations: quantised to int8 at run time, per row (token) and per block of
  ``BLOCK`` input features, scale ``max |x| / 127`` of that row's block; the products
  run in int32 (VNNI where the CPU has it) and each block's sum is scaled back.

Each token's quantisation depends only on that token's own values, so **a text's
vector does not depend on the other texts in its batch** (ONNX Runtime's dynamic
quantisation takes one activation scale per tensor, over the whole batch: the same
query got different vectors alone and in a service micro-batch, min cosine 0.9917 on
all-MiniLM-L6-v2). Measured quality, speed and the other blockings tried are in
docs/PERFORMANCE.md ("int8: block-wise activations").

``reference()`` computes the same arithmetic in PyTorch (the quantised path's
reference: tests check the ONNX Runtime graph against it).
"""
from __future__ import annotations

import contextlib

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from torch.overrides import TorchFunctionMode

#: input features per quantisation block (weights and activations alike); 32 keeps
#: nDCG@10 within 0.003 of fp32 on both measured corpora, 64 and 128 did not
BLOCK = 32
#: MatMulNBits accuracy_level 4: activations quantised to int8, int32 products
ACCURACY_INT8 = 4
MS_DOMAIN = "com.microsoft"


def _blocks(x: torch.Tensor, block: int) -> torch.Tensor:
    """(..., K) -> (..., ceil(K / block), block), zero-padded at the end."""
    k = x.shape[-1]
    nb = -(-k // block)
    return F.pad(x, (0, nb * block - k)).reshape(*x.shape[:-1], nb, block)


def quantize_blocks(x: torch.Tensor, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per row and block: x (..., K) -> q (..., nb, block) int8 values in
    [-127, 127] and scales (..., nb) float32 with x ~= q * scale."""
    xb = _blocks(x.float(), block)  # (..., nb, block)
    scale = xb.abs().amax(-1) / 127.0  # (..., nb)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(xb / safe[..., None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


def reference_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                     block: int = BLOCK) -> torch.Tensor:
    """What a quantised product computes: x (..., K) @ weight (N, K).T + bias, both
    operands int8 per block, each block's integer sum scaled back. Returns (..., N)."""
    xq, xs = quantize_blocks(x, block)        # (..., nb, block), (..., nb)
    wq, ws = quantize_blocks(weight, block)   # (N, nb, block), (N, nb)
    dots = torch.einsum("...kc,nkc->...nk", xq.double(), wq.double())  # (..., N, nb) exact integers
    y = (dots * xs.double()[..., None, :] * ws.double()).sum(-1).to(x.dtype)  # (..., N)
    return y if bias is None else y + bias


class _Reference(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            return reference_linear(*args, **kwargs)
        return func(*args, **kwargs)


def reference() -> contextlib.AbstractContextManager:
    """Inside ``with reference():`` every ``F.linear`` (every nn.Linear, the fused q/k/v
    projection) computes as the quantised graph does: run the eager encoder in it to get
    the int8 path's reference output."""
    return _Reference()


def _weight_node(node: onnx.NodeProto, weight: np.ndarray, block: int,
                 graph: onnx.GraphProto) -> onnx.NodeProto:
    """MatMul(x, weight (K, N)) -> MatMulNBits with the weight's blocks as initializers
    (added once where several products share a weight)."""
    k, n = weight.shape
    qname, sname = f"{node.input[1]}_int8_blocks", f"{node.input[1]}_int8_scales"
    if not any(i.name == qname for i in graph.initializer):
        q, scale = quantize_blocks(torch.from_numpy(weight.T.copy()), block)  # (N, nb, block), (N, nb)
        # MatMulNBits stores 8-bit values unsigned with the default zero point 128
        packed = (q.numpy().astype(np.int16) + 128).astype(np.uint8)
        graph.initializer.extend([numpy_helper.from_array(packed, qname),
                                  numpy_helper.from_array(scale.reshape(-1).numpy(), sname)])
    return helper.make_node("MatMulNBits", [node.input[0], qname, sname], list(node.output),
                            name=f"{node.name}_int8", domain=MS_DOMAIN, K=k, N=n, bits=8,
                            block_size=block, accuracy_level=ACCURACY_INT8)


def quantize_int8(model: bytes, block: int = BLOCK) -> bytes:
    """The exported fp32 graph with every constant-weight MatMul replaced (see above)."""
    proto = onnx.load_from_string(model)
    graph = proto.graph
    weights = {i.name: i for i in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.op_type == "MatMul" and len(weights.get(node.input[1], onnx.TensorProto()).dims) == 2:
            w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)  # (K, N)
            nodes.append(_weight_node(node, w, block, graph))
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]  # drop the fp32 weights
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(op.domain == MS_DOMAIN for op in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return proto.SerializeToString()
