"""The pre-LN transformer block shared by decoders and encoders of both stacks."""

from __future__ import annotations

import torch
from torch import nn

from registry_core.nn.attention import Rotary, SelfAttention
from registry_core.nn.kv_cache import KVCache
from registry_core.nn.mlp import MLP

__all__ = ["Block"]


class Block(nn.Module):
    """``x + attn(ln1(x))`` then ``x + mlp(ln2(x))``: pre-LN keeps deep stacks stable without warm-up tricks."""

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
    ) -> None:
        super().__init__()
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
        h = self.ln1(x)
        x = x + self.attn(h, attn_mask=attn_mask, is_causal=is_causal, rotary=rotary, cache=cache, layer=layer)
        return x + self.mlp(self.ln2(x))
