"""``learned-2d``: one learned vector per patch position, bicubic-interpolated when the grid changes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from registry_gfm.positions.placement import as_placement
from registry_gfm.positions.specs import Learned2DConfig

__all__ = ["Learned2D", "build"]


class Learned2D(nn.Module):
    """A ``(rows, columns, D)`` table; a patch at (t, h, w) gets row h, column w (frames share it)."""

    mode = "additive"
    grid = 2
    name = "learned-2d"

    def __init__(self, embed_dim: int, grid_size: tuple[int, int], init_std: float = 0.02) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.table = nn.Parameter(torch.empty(grid_size[0], grid_size[1], embed_dim))
        nn.init.normal_(self.table, std=init_std)
        self._init_std = init_std

    def table_for(self, rows: int, cols: int) -> torch.Tensor:
        """The table at a ``rows x cols`` grid: itself, or bicubic-interpolated (align_corners=False)."""
        if (rows, cols) == tuple(self.table.shape[:2]):
            return self.table
        grid = self.table.permute(2, 0, 1).unsqueeze(0)  # (1, D, r, c)
        out = F.interpolate(grid, size=(rows, cols), mode="bicubic", align_corners=False)
        return out[0].permute(1, 2, 0)

    def resized(self, embed_dim: int) -> Learned2D:
        return Learned2D(embed_dim, (int(self.table.shape[0]), int(self.table.shape[1])), self._init_std)

    def forward(self, x: torch.Tensor, positions: Any = None) -> torch.Tensor:
        where = as_placement(positions)
        if where is None:
            raise ValueError("positional encoder 'learned-2d' needs the patch positions (the tokenizer's 'positions')")
        pos = where.positions.long()
        h, w = pos[..., -2], pos[..., -1]
        rows, cols = int(h.max()) + 1, int(w.max()) + 1
        table = self.table_for(rows, cols)
        return x + table[h, w].to(x.dtype)


def build(config: Learned2DConfig) -> Learned2D:
    if config.embed_dim is None:
        raise ValueError("learned-2d: embed_dim is not set (compose with a backbone, or set it)")
    return Learned2D(config.embed_dim, (config.grid_size[0], config.grid_size[1]), config.init_std)
