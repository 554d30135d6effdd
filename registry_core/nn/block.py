"""The transformer block shared by decoders and encoders of both stacks: pre-LN, or post-LN (BERT, the original)."""

from __future__ import annotations

import torch
from torch import nn

from registry_core.nn.attention import Rotary, SelfAttention
from registry_core.nn.key_table import KeyRule, KeyTable
from registry_core.nn.kv_cache import KVCache
from registry_core.nn.mlp import MLP

__all__ = ["NORMS", "TORCH_ENCODER_LAYER_KEYS", "Block"]

#: Where a block's LayerNorms sit: before each branch (pre, GPT-2 and ViT) or after each residual sum (post, the
#: original transformer and BERT).
NORMS = ("pre", "post")


class Block(nn.Module):
    """Pre-LN: ``x + attn(ln1(x))`` then ``x + mlp(ln2(x))`` (stable deep stacks without warm-up tricks).
    Post-LN (``norm="post"``): ``ln1(x + attn(x))`` then ``ln2(x + mlp(x))``, as BERT and the original transformer."""

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        mlp_ratio: float = 4.0,
        bias: bool = True,
        dropout: float = 0.0,
        activation: str = "gelu",
        eps: float = 1e-5,
        norm: str = "pre",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        self.post = norm == "post"
        self.ln1 = nn.LayerNorm(dim, eps=eps, bias=bias)
        self.attn = SelfAttention(dim, heads, bias=bias, dropout=dropout)
        self.ln2 = nn.LayerNorm(dim, eps=eps, bias=bias)
        self.mlp = MLP(dim, round(dim * mlp_ratio), bias=bias, activation=activation, dropout=dropout)

    def forward(
        self,
        x: torch.Tensor,
        *,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        rotary: Rotary | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> torch.Tensor:
        if self.post:
            x = self.ln1(x + self.attn(x, attn_mask=attn_mask, is_causal=is_causal, rotary=rotary, cache=cache,
                                       layer=layer))
            return self.ln2(x + self.mlp(x))
        h = self.ln1(x)
        x = x + self.attn(h, attn_mask=attn_mask, is_causal=is_causal, rotary=rotary, cache=cache, layer=layer)
        return x + self.mlp(self.ln2(x))


#: ``torch.nn.TransformerEncoderLayer`` (the original transformer's block: ``norm_first=False`` is post-LN, ``True``
#: pre-LN) <-> our ``Block``: its ``nn.MultiheadAttention`` holds q, k, v fused in ``in_proj_weight``, as our ``qkv``.
TORCH_ENCODER_LAYER_KEYS = KeyTable(
    name="torch-encoder-layer",
    rules=tuple(KeyRule(ours, theirs) for ours, theirs in (
        ("attn.qkv.weight", "self_attn.in_proj_weight"), ("attn.qkv.bias", "self_attn.in_proj_bias"),
        ("attn.proj.weight", "self_attn.out_proj.weight"), ("attn.proj.bias", "self_attn.out_proj.bias"),
        ("mlp.fc.weight", "linear1.weight"), ("mlp.fc.bias", "linear1.bias"),
        ("mlp.proj.weight", "linear2.weight"), ("mlp.proj.bias", "linear2.bias"),
        ("ln1.weight", "norm1.weight"), ("ln1.bias", "norm1.bias"),
        ("ln2.weight", "norm2.weight"), ("ln2.bias", "norm2.bias"),
    )),
)
