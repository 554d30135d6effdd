"""``sinusoidal``: fixed sin/cos positions added to the embeddings (Vaswani et al. 2017)."""

from __future__ import annotations

import torch
from torch import nn

from registry_core.nn import lookup, sinusoid_table, span
from registry_llm.positions.specs import DEFAULT_MAX_POSITIONS, SinusoidalConfig

__all__ = ["SinusoidalPositions", "build", "sinusoid_table"]


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
