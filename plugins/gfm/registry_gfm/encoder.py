"""The feature API of a ViT encoder: chips in, tokens out (cls first), for probes, heads and tiled inference."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from registry_gfm.positions.placement import Placement
from registry_gfm.tokenizers.patch_layout import as_5d, patch_grid, token_grid_positions

__all__ = ["ImageEncoder", "chip_placement"]


def chip_placement(embed: nn.Module, chips: torch.Tensor, **meta: Any) -> tuple[Placement, tuple[int, int, int]]:
    """Where the tokens of ``chips`` ``(B, C, [T,] H, W)`` sit, and their ``(t, h, w)`` patch grid, for the patch
    embedding ``embed`` (every band group repeats the grid); ``meta``: ``time``, ``lonlat``, ``gsd``."""
    x = as_5d(chips)
    grid = patch_grid(x.shape[2:], int(embed.patch), int(getattr(embed, "tubelet", 1)))  # type: ignore[arg-type]
    groups = int(getattr(embed, "num_groups", 1))
    pos = token_grid_positions(grid, device=x.device).repeat(groups, 1)
    return Placement(pos, meta.get("time"), meta.get("lonlat"), meta.get("gsd")), grid


class ImageEncoder(nn.Module):
    """``encoder(chips) -> (B, [1 +] groups·N, D)``: patch embedding, positions, then the ViT blocks.

    ``chips`` are ``(B, C, T, H, W)`` or ``(B, C, H, W)``, normalised as the encoder was trained; ``time``
    ``(B, T)``, ``lonlat`` ``(B, 2)`` and ``gsd`` ``(B,)`` feed the optional metadata encodings.
    """

    def __init__(self, embed: nn.Module, positional: nn.Module | None, backbone: nn.Module) -> None:
        super().__init__()
        self.embed, self.positional, self.backbone = embed, positional, backbone

    @property
    def patch_size(self) -> int:
        return int(self.embed.patch)  # type: ignore[arg-type]

    @property
    def tubelet(self) -> int:
        return int(self.embed.tubelet)  # type: ignore[arg-type]

    @property
    def num_prefix_tokens(self) -> int:
        return int(getattr(self.backbone, "num_prefix_tokens", 0))

    def placement(self, chips: torch.Tensor, **meta: Any) -> Placement:
        """Token positions of ``chips`` (every band group repeats the patch grid)."""
        return chip_placement(self.embed, chips, **meta)[0]

    def forward(self, chips: torch.Tensor, *, time: torch.Tensor | None = None, lonlat: torch.Tensor | None = None,
                gsd: torch.Tensor | None = None) -> torch.Tensor:
        x = as_5d(chips)
        where = self.placement(x, time=time, lonlat=lonlat, gsd=gsd)
        out: torch.Tensor = self.backbone(self.embed(x), self.positional, where)
        return out
