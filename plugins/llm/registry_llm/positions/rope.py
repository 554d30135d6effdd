"""``rope``: rotary position embedding, applied to queries and keys inside attention (Su et al. 2021)."""

from __future__ import annotations

import torch
from torch import nn

from registry_core.nn import apply_rotary, check_convention, lookup, rotary_table, span
from registry_llm.positions.specs import DEFAULT_MAX_POSITIONS, RopeConfig


class RotaryPositions(nn.Module):
    """``rotate(q, k, positions) -> (q, k)`` for ``(B, H, T, head_dim)`` queries and keys.

    Each pair of dimensions turns by ``position * base^(-2i/head_dim)``, so ``q·k`` depends on the
    distance between the two positions only. ``rotate-half`` pairs dimension ``i`` with
    ``i + head_dim/2`` (GPT-NeoX, LLaMA, HF); ``interleaved`` pairs ``2i`` with ``2i+1``. The math is
    ``registry_core.nn.rotary``; this module caches the 1-D table.
    """

    mode = "rotary"
    grid = 1
    cos: torch.Tensor
    sin: torch.Tensor

    def __init__(
        self,
        head_dim: int | None = None,
        max_positions: int | None = None,
        base: float = 10000.0,
        convention: str = "rotate-half",
    ):
        super().__init__()
        if head_dim is not None and head_dim % 2:
            raise ValueError(f"positional encoder 'rope' needs an even head_dim, got {head_dim}")
        check_convention("rope", convention)
        self.head_dim = head_dim
        self.max_positions = max_positions or DEFAULT_MAX_POSITIONS
        self.base = base
        self.convention = convention
        self.register_buffer("cos", torch.empty(0, 0), persistent=False)
        self.register_buffer("sin", torch.empty(0, 0), persistent=False)

    def _tables(self, length: int, dim: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cos.shape[0] < length or self.cos.shape[1] != dim or self.cos.device != device:
            cos, sin = rotary_table(max(length, self.max_positions), dim, base=self.base, convention=self.convention)
            self.cos, self.sin = cos.to(device), sin.to(device)
        return self.cos, self.sin

    def rotate(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        dim = q.shape[-1]
        if dim % 2 or (self.head_dim is not None and dim != self.head_dim):
            raise ValueError(f"positional encoder 'rope' expects head_dim {self.head_dim or 'even'}, got {dim}")
        t = q.shape[-2]
        pos, needed = span("rope", positions, t)
        cos, sin = self._tables(needed, dim, q.device)
        cos, sin = lookup(cos, pos, t).to(q.dtype), lookup(sin, pos, t).to(q.dtype)  # (T, hd) or (B, T, hd)
        if pos is not None and pos.dim() == 2:
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, hd): broadcast over heads
        return (
            apply_rotary(q, cos, sin, convention=self.convention),
            apply_rotary(k, cos, sin, convention=self.convention),
        )


def build(config: RopeConfig) -> RotaryPositions:
    head_dim = None
    if config.embed_dim is not None and config.heads is not None:
        if config.embed_dim % config.heads:
            raise ValueError(
                f"positional_encoder 'rope': embed_dim {config.embed_dim} is not divisible by heads {config.heads}"
            )
        head_dim = config.embed_dim // config.heads
    return RotaryPositions(head_dim, config.max_positions, config.base, config.convention)
