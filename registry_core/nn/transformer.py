"""The one transformer stack of the project: pre-LN blocks, a final LayerNorm, any position scheme.

Decoders (``causal=True``) and encoders (``causal=False``) of both stacks are this class. It takes a
positional encoder by its ``mode``: ``additive`` ones are added to the input, ``rotary`` ones rotate
queries and keys in every layer, ``attention_bias`` ones become the SDPA mask. It knows nothing of
text or images: the input is ``(B, T, D)`` vectors, ``positions`` whatever the encoder understands,
and ``keep`` an optional ``(B, T)`` mask of real tokens (padding, or variable token counts).
Attention-bias encoders are asked for ``bias(q_len, k_len)``: they assume contiguous positions.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from registry_core.nn.attention import Rotary
from registry_core.nn.block import Block
from registry_core.nn.kv_cache import KVCache
from registry_core.nn.masks import attention_mask

__all__ = ["POSITION_MODES", "Transformer", "init_weights"]

POSITION_MODES = ("additive", "rotary", "attention_bias")


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Normal(0, std) weights and zero biases for linear and embedding layers (a small, denormal-free init)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=std)


class Transformer(nn.Module):
    """A stack of ``depth`` pre-LN blocks: ``(B, T, D) -> (B, T, D)``, final LayerNorm applied."""

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        heads: int,
        *,
        causal: bool,
        mlp_ratio: float = 4.0,
        bias: bool = True,
        dropout: float = 0.0,
        activation: str = "gelu",
        max_positions: int | None = None,
        eps: float = 1e-5,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        if embed_dim % heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by heads {heads}")
        self.embed_dim = embed_dim
        self.depth = depth
        self.heads = heads
        self.head_dim = embed_dim // heads
        self.causal = causal
        self.max_positions = max_positions
        self.activation = activation
        self.eps = eps
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(embed_dim, heads, mlp_ratio=mlp_ratio, bias=bias, dropout=dropout, activation=activation, eps=eps)
            for _ in range(depth)
        )
        self.ln_f = nn.LayerNorm(embed_dim, eps=eps, bias=bias)
        self.apply(lambda m: init_weights(m, init_std))
        # GPT-2's scaled residual init: each residual branch's output projection gets std / sqrt(2 * depth),
        # so the residual stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.proj.weight")):
                nn.init.normal_(p, mean=0.0, std=init_std / math.sqrt(2 * depth))

    def num_parameters(self) -> int:
        """Parameters of the stack itself (embeddings and heads belong to other parts)."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len: int, extra_params: int = 0) -> int:
        """Training FLOPs per token: ``6 N`` for the matmuls (forward + backward) plus attention scores.

        ``extra_params`` adds parameters used once per token outside the stack (the LM head). The
        attention term is ``12 * depth * D * seq_len`` (PaLM's appendix B count, causal masking ignored).
        """
        n = self.num_parameters() + extra_params
        return 6 * n + 12 * self.depth * self.embed_dim * seq_len

    def new_cache(
        self, batch: int, capacity: int, *, dtype: torch.dtype | None = None, device: Any = None
    ) -> KVCache:
        """A preallocated KV cache sized for this stack."""
        ref = self.ln_f.weight
        return KVCache(
            self.depth,
            batch,
            self.heads,
            capacity,
            self.head_dim,
            dtype=dtype or ref.dtype,
            device=device if device is not None else ref.device,
        )

    def forward(
        self,
        x: torch.Tensor,
        positional: Any = None,
        positions: torch.Tensor | None = None,
        *,
        keep: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Run the stack on ``x`` ``(B, T, D)``; with ``cache``, ``x`` continues the cached tokens."""
        _, t, d = x.shape
        if d != self.embed_dim:
            raise ValueError(f"input has width {d}, the backbone expects embed_dim {self.embed_dim}")
        offset = cache.length if cache is not None else 0
        if self.max_positions is not None and offset + t > self.max_positions:
            raise ValueError(f"sequence of {offset + t} tokens is longer than max_positions {self.max_positions}")
        mode = getattr(positional, "mode", None) if positional is not None else None
        if positions is None and offset > 0:
            # Cached decoding continues at ``offset``. Made on the host: encoders read their range without
            # a GPU sync, and indexing a device table with host indices is allowed. Without a cache,
            # positions stay None and each encoder uses its own default (0..T-1 in 1D, a patch grid in 2D).
            positions = torch.arange(offset, offset + t)
        rotary: Rotary | None = None
        bias: torch.Tensor | None = None
        if mode == "additive":
            x = positional(x, positions)
        elif mode == "rotary":
            rotate = positional.rotate
            bound = positions

            def rotary(q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                out: tuple[torch.Tensor, torch.Tensor] = rotate(q, k, bound)
                return out
        elif mode == "attention_bias":
            bias = positional.bias(t, offset + t)
        elif mode is not None:
            raise ValueError(f"positional encoder mode {mode!r} is not one of {', '.join(POSITION_MODES)}")
        # A float mask must match the queries' dtype, which autocast makes lower than the residual stream's.
        dev = x.device.type
        mask_dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
        mask, is_causal = attention_mask(
            t, offset + t, causal=self.causal, bias=bias, keep=keep, dtype=mask_dtype, device=x.device
        )
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, attn_mask=mask, is_causal=is_causal, rotary=rotary, cache=cache, layer=i)
        if cache is not None:
            cache.advance(t)
        return self.ln_f(x)
