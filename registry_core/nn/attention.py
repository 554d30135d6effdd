"""Multi-head self-attention over ``F.scaled_dot_product_attention``, position-scheme agnostic.

Positions reach attention in one of two ways, both optional: a ``rotary`` callable that turns
``(q, k)`` into rotated ``(q, k)`` (RoPE), and an ``attn_mask`` that may carry an additive bias
(ALiBi) as well as causal and padding masking. Additive positions never get here: they were added to
the embeddings before the first block.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from registry_core.nn.kv_cache import KVCache

__all__ = ["Rotary", "SelfAttention"]

#: ``(q, k) -> (q, k)`` with both ``(B, H, T, head_dim)``; the positions are bound by the caller.
Rotary = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class SelfAttention(nn.Module):
    """Fused-QKV multi-head self-attention: ``(B, T, D) -> (B, T, D)``."""

    def __init__(self, dim: int, heads: int, *, bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"embed_dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)
        self.attn_dropout = dropout
        self.resid_dropout = nn.Dropout(dropout)

    def project(self, x: torch.Tensor, rotary: Rotary | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys (rotated when ``rotary`` is given) and values of ``x`` ``(B, T, D)``, each ``(B, H, T, hd)``."""
        b, t, _ = x.shape
        # (B, T, 3D) -> three (B, H, T, hd)
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if rotary is not None:
            q, k = rotary(q, k)
        return q, k, v

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
        b, t, d = x.shape
        q, k, v = self.project(x, rotary)
        if cache is not None:
            # Keys are cached already rotated, so old tokens are never rotated again.
            k, v = cache.update(layer, k, v)
            if k.dtype != q.dtype:  # a float32 cache read under autocast
                k, v = k.to(q.dtype), v.to(q.dtype)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.attn_dropout if self.training else 0.0,
            is_causal=is_causal,
        )
        y = y.transpose(1, 2).reshape(b, t, d)  # (B, H, T, hd) -> (B, T, D)
        return self.resid_dropout(self.proj(y))
