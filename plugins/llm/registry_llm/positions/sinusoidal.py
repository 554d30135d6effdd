"""``sinusoidal``: fixed sin/cos positions added to the embeddings (Vaswani et al. 2017)."""

from __future__ import annotations

import math

import torch
from torch import nn

from registry_llm.positions._positions import DEFAULT_MAX_POSITIONS, lookup, span
from registry_llm.positions.specs import SinusoidalConfig


def sinusoid_table(length: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """``(length, dim)``: even columns ``sin(p / base^(2i/dim))``, odd columns the matching ``cos``."""
    pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    inv = torch.exp(-math.log(base) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * inv)
    table[:, 1::2] = torch.cos(pos * inv)[:, : dim // 2]
    return table.float()


class SinusoidalPositions(nn.Module):
    """``forward(x, positions) -> x + P[positions]``; no parameters, the table grows on demand."""

    mode = "additive"
    grid = 1
    table: torch.Tensor

    def __init__(self, embed_dim: int | None = None, max_positions: int | None = None, base: float = 10000.0):
        super().__init__()
        self.embed_dim = embed_dim
        self.max_positions = max_positions or DEFAULT_MAX_POSITIONS
        self.base = base
        # Not saved in checkpoints: it is a pure function of the config.
        self.register_buffer("table", torch.empty(0, 0), persistent=False)

    def _table(self, length: int, dim: int, device: torch.device) -> torch.Tensor:
        if self.table.shape[0] < length or self.table.shape[1] != dim or self.table.device != device:
            self.table = sinusoid_table(max(length, self.max_positions), dim, self.base).to(device)
        return self.table

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        dim = x.shape[-1]
        if self.embed_dim is not None and dim != self.embed_dim:
            raise ValueError(f"positional encoder 'sinusoidal' has embed_dim {self.embed_dim}, the input has {dim}")
        pos, needed = span("sinusoidal", positions, x.shape[-2])
        table = self._table(needed, dim, x.device)
        return x + lookup(table, pos, x.shape[-2]).to(x.dtype)  # (T, D) or (B, T, D), broadcast over the batch


def build(config: SinusoidalConfig) -> SinusoidalPositions:
    return SinusoidalPositions(config.embed_dim, config.max_positions, config.base)
