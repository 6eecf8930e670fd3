"""The ranked encoder: a BERT-shaped transformer whose attention rank is a setting.

Axes: b batch, t tokens, d model width, f feed-forward width.

Layout follows BERT (Devlin et al. 2019) so that BERT-family checkpoints map onto it
exactly (see convert.py): token + position (+ token-type) embeddings -> LayerNorm ->
L blocks. A block is attention + feed-forward (GELU), each with a residual and a
LayerNorm. ``norm="post"`` is BERT's order (add, then normalise); ``norm="pre"``
normalises the input of each sub-layer and adds one final LayerNorm, which trains
more stably from scratch (Xiong et al. 2020). The encoder returns token embeddings;
pooling and L2 normalisation are separate sentence-transformers modules.
"""
from __future__ import annotations

import torch
from torch import nn

from ranksearch.errors import InvalidArgument

from .attention import RankedAttention
from .config import EncoderConfig


class FeedForward(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.up = nn.Linear(d_model, ffn_dim)
        self.act = nn.GELU()  # exact (erf) GELU, as BERT's "gelu"
        self.down = nn.Linear(ffn_dim, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(self.act(self.up(x))))  # (b, t, f) -> (b, t, d)


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int, rank: int, value_dim: int, ffn_dim: int,
                 dropout: float, norm: str, eps: float):
        super().__init__()
        self.pre_norm = norm == "pre"
        self.attn = RankedAttention(d_model, heads, rank, value_dim, dropout=dropout)
        self.attn_drop = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.ffn = FeedForward(d_model, ffn_dim, dropout)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)

    def forward_unpadded(self, h: torch.Tensor, idx: torch.Tensor, b: int, t: int,
                         mask: torch.Tensor) -> torch.Tensor:
        """Inference on the real tokens only (see RankedEncoder.forward): h (n, d)."""
        attend = lambda z: self.attn.forward_unpadded(z, idx, b, t, mask)  # noqa: E731
        if self.pre_norm:
            h = h + attend(self.norm1(h))
            return h + self.ffn(self.norm2(h))
        h = self.norm1(h + attend(h))
        return self.norm2(h + self.ffn(h))  # (n, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                attend=None) -> torch.Tensor:
        attend = attend or self.attn  # attend: self.attn or self.attn.reference
        if self.pre_norm:
            x = x + self.attn_drop(attend(self.norm1(x), mask))
            return x + self.ffn(self.norm2(x))
        x = self.norm1(x + self.attn_drop(attend(x, mask)))
        return self.norm2(x + self.ffn(x))  # (b, t, d)


class RankedEncoder(nn.Module):
    """``forward(input_ids, attention_mask, token_type_ids=None) -> (b, t, d)``."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        c = self.config = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.max_len, c.d_model)
        self.type_emb = nn.Embedding(c.type_vocab_size, c.d_model) if c.type_vocab_size else None
        self.emb_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.emb_drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            Block(c.d_model, c.heads, r, c.value_dim, c.ffn_dim, c.dropout, c.norm,
                  c.layer_norm_eps) for r in c.ranks)
        self.final_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps) if c.norm == "pre" else None
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None):
        b, t = input_ids.shape
        if t > self.config.max_len:
            raise InvalidArgument("input_ids", f"{t} tokens exceed max_len {self.config.max_len}")
        positions = torch.arange(t, device=input_ids.device)
        x = self.tok_emb(input_ids) + self.pos_emb(positions)[None]  # (b, t, d)
        if self.type_emb is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.type_emb(token_type_ids)
        return self.emb_drop(self.emb_norm(x))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, reference: bool = False):
        """input_ids (b, t); attention_mask (b, t), 1/True = real token.
        ``reference=True`` runs every attention through its explicit-softmax path.

        Inference on a padded batch (eval mode, no autograd) runs every position-wise
        part -- projections, feed-forward, LayerNorm -- on the real tokens only, and
        returns zeros at padded positions (pooling ignores them); training and the
        reference path keep the padded layout."""
        mask = None if attention_mask is None else attention_mask.bool()  # (b, t)
        if mask is not None and bool(mask.all()):
            mask = None  # no padding: lets SDPA take its unmasked fast path
        x = self.embed(input_ids, token_type_ids)
        if mask is not None and not reference and not self.training and not torch.is_grad_enabled():
            b, t, d = x.shape
            idx = mask.reshape(-1).nonzero().squeeze(1)  # (n,) flat positions of real tokens
            h = x.reshape(b * t, d).index_select(0, idx)  # (n, d)
            for block in self.blocks:
                h = block.forward_unpadded(h, idx, b, t, mask)
            if self.final_norm is not None:
                h = self.final_norm(h)
            return x.new_zeros(b * t, d).index_copy_(0, idx, h).view(b, t, d)
        return self.padded(x, mask, "reference" if reference else "forward")

    def padded(self, x: torch.Tensor, mask: torch.Tensor | None, attention: str = "forward"):
        """The blocks on the padded layout: x (b, t, d) embedded input, mask (b, t) bool
        or None; ``attention`` names the RankedAttention method each block uses
        ("forward", "reference", or "explicit" for graph export). Returns (b, t, d)."""
        for block in self.blocks:  # "forward": the module itself, so its hooks run
            x = block(x, mask, None if attention == "forward" else getattr(block.attn, attention))
        return self.final_norm(x) if self.final_norm is not None else x  # (b, t, d)
