"""Multi-head attention whose query/key width per head (the *rank*) is its own setting.

Axes: b batch, tq query tokens, tk key tokens, h heads, r rank (query/key width per
head), e value width per head, d model width.

Head h scores a query token x against a key token y with the bilinear form
``(W_Q,h x)·(W_K,h y) / sqrt(r)`` whose matrix ``W_Q,hᵀ W_K,h`` has rank at most r.
Amsel, Yehudai & Bruna (arXiv 2407.16153) show that this rank, not the number of
heads, limits what one layer can compute (e.g. nearest neighbour); see docs/BACKGROUND.md.
Heads, rank and value width are therefore independent here, unlike the usual
``r = e = d / h``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ranksearch.errors import ConfigError


class RankedAttention(nn.Module):
    """Self- or cross-attention with ``heads`` heads of query/key width ``rank`` and
    value width ``value_dim``.

    ``forward`` is the fused path (``scaled_dot_product_attention``); ``reference`` is
    the same computation spelled out with an explicit softmax, kept for tests;
    ``scores`` returns the scaled logits (hard attention = ``scores(...).argmax(-1)``).
    """

    def __init__(self, d_model: int, heads: int, rank: int, value_dim: int,
                 dropout: float = 0.0, bias: bool = True):
        super().__init__()
        for name, value in (("d_model", d_model), ("heads", heads), ("rank", rank),
                            ("value_dim", value_dim)):
            if value < 1:
                raise ConfigError(name, f"must be >= 1, got {value}")
        self.heads, self.rank, self.value_dim = heads, rank, value_dim
        self.scale = 1.0 / math.sqrt(rank)
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, heads * rank, bias=bias)
        self.k_proj = nn.Linear(d_model, heads * rank, bias=bias)
        self.v_proj = nn.Linear(d_model, heads * value_dim, bias=bias)
        self.out_proj = nn.Linear(heads * value_dim, d_model, bias=bias)

    def _split(self, t: torch.Tensor, width: int) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, width).transpose(1, 2)  # (b, h, n, width)

    def _qkv(self, x, context, fused: bool = False):
        if fused and context is None and not torch.is_grad_enabled():
            # Inference self-attention: one matrix product for q, k and v instead of
            # three (measured ~10% faster on the projections on CPU).
            return self._split_qkv(self._project_qkv(x))
        context = x if context is None else context
        q = self._split(self.q_proj(x), self.rank)         # (b, h, tq, r)
        k = self._split(self.k_proj(context), self.rank)   # (b, h, tk, r)
        v = self._split(self.v_proj(context), self.value_dim)  # (b, h, tk, e)
        return q, k, v

    def _split_qkv(self, qkv: torch.Tensor):
        """(b, t, h*(2r+e)) output of the fused projection -> q, k (b, h, t, r), v (b, h, t, e)."""
        hr = self.heads * self.rank
        q, k, v = qkv.split([hr, hr, self.heads * self.value_dim], dim=-1)
        return self._split(q, self.rank), self._split(k, self.rank), self._split(v, self.value_dim)

    def _project_qkv(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d) -> (..., h*(2r+e)): the fused q/k/v projection, through a prepacked
        kernel where one was installed (packed.py, bf16 serving on CPU)."""
        packed = self.__dict__.get("packed_qkv")
        return packed(x) if packed is not None else F.linear(x, *self._fused_qkv())

    def _fused_qkv(self):
        """[W_q; W_k; W_v] and its bias, rebuilt whenever a weight changes (its storage or
        in-place version counter), so training and load_state_dict never see a stale copy."""
        mods = (self.q_proj, self.k_proj, self.v_proj)
        params = [t for m in mods for t in (m.weight, m.bias) if t is not None]
        key = tuple((t.data_ptr(), t._version) for t in params)
        if getattr(self, "_fused_key", None) != key:
            w = torch.cat([m.weight for m in mods]).detach()  # (h*(2r+e), d)
            b = torch.cat([m.bias for m in mods]).detach() if self.q_proj.bias is not None else None
            self._fused, self._fused_key = (w, b), key
        return self._fused

    def _merge(self, o: torch.Tensor) -> torch.Tensor:
        b, _, tq, _ = o.shape
        o = o.transpose(1, 2).reshape(b, tq, self.heads * self.value_dim)  # (b, tq, h*e)
        return self.out_proj(o)  # (b, tq, d)

    @staticmethod
    def _key_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
        # (b, tk) bool, True = real token -> (b, 1, 1, tk), broadcast over heads and queries
        return None if mask is None else mask[:, None, None, :].to(torch.bool)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> torch.Tensor:
        """x (b, tq, d); context (b, tk, d) or None (= self-attention);
        mask (b, tk) bool, True = real key token. Returns (b, tq, d)."""
        return self._merge(self._attend(*self._qkv(x, context, fused=True), mask))  # (b, tq, d)

    def _attend(self, q, k, v, mask) -> torch.Tensor:
        """Fused attention: q, k (b, h, tq|tk, r), v (b, h, tk, e) -> (b, h, tq, e)."""
        # The fused (flash) kernels want one head width for q, k and v; with rank != e
        # SDPA falls back to its unfused math path, measured 4-8x slower on CPU.
        # Zero-padding the narrower side to the wider changes no score (zeros add
        # nothing to q·k; the scale is passed explicitly) and no output (zero value
        # columns are sliced off), so the fast kernel runs for every rank.
        width = max(self.rank, self.value_dim)
        if self.rank < width:
            q, k = F.pad(q, (0, width - self.rank)), F.pad(k, (0, width - self.rank))
        elif self.value_dim < width:
            v = F.pad(v, (0, width - self.value_dim))
        o = F.scaled_dot_product_attention(
            q, k, v, attn_mask=self._key_mask(mask),
            dropout_p=self.dropout if self.training else 0.0,
            scale=self.scale)  # (b, h, tq, width)
        return o[..., :self.value_dim]

    def forward_unpadded(self, z: torch.Tensor, idx: torch.Tensor, b: int, t: int,
                         mask: torch.Tensor) -> torch.Tensor:
        """Inference self-attention over the real tokens only: z (n, d) holds the
        n real tokens of a (b, t) batch, idx (n,) their flat positions in it, mask
        (b, t) bool. The projections run on n rows instead of b*t; only the
        attention itself sees the padded layout. Returns (n, d)."""
        qkv = self._project_qkv(z)  # (n, h*(2r+e))
        full = qkv.new_zeros(b * t, qkv.shape[1]).index_copy_(0, idx, qkv).view(b, t, -1)
        o = self._attend(*self._split_qkv(full), mask)  # (b, h, t, e)
        o = o.transpose(1, 2).reshape(b * t, self.heads * self.value_dim)
        return self.out_proj(o.index_select(0, idx))  # (n, h*e) -> (n, d)

    def explicit(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Inference self-attention for graph export (ONNX): the fused q/k/v projection
        and an explicit softmax whose scores are computed at the true rank width. The
        zero padding of ``_attend`` exists only for PyTorch's fused kernels; an exported
        graph has no such kernel, so a lower rank makes its scoring cheaper here.
        x (b, t, d), mask (b, t) bool -> (b, t, d); same result as forward."""
        q, k, v = self._split_qkv(self._project_qkv(x))  # (b, h, t, r|e)
        p = torch.softmax(self._logits(q, k, mask), dim=-1)  # (b, h, t, t)
        return self._merge(p @ v)  # (b, h, t, e) -> (b, t, d)

    def _logits(self, q, k, mask):
        s = (q @ k.transpose(-2, -1)) * self.scale  # (b, h, tq, tk)
        key_mask = self._key_mask(mask)
        if key_mask is not None:
            s = s.masked_fill(~key_mask, float("-inf"))
        return s

    def scores(self, x: torch.Tensor, context: torch.Tensor | None = None,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled attention logits (b, h, tq, tk); padded keys (mask False) get -inf."""
        q, k, _ = self._qkv(x, context)
        return self._logits(q, k, mask)

    def reference(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                  context: torch.Tensor | None = None) -> torch.Tensor:
        """The slow, obvious path: explicit softmax over keys. Same result as forward."""
        q, k, v = self._qkv(x, context)
        p = torch.softmax(self._logits(q, k, mask), dim=-1)  # (b, h, tq, tk)
        p = F.dropout(p, self.dropout, self.training)
        return self._merge(p @ v)  # (b, h, tq, e) -> (b, tq, d)
