"""``rope-2d``: axial rotary positions over the patch grid, applied to queries and keys inside attention.

Each head's dimensions split in two halves: the first turns with the patch row ``h``, the second with the
column ``w`` (``registry_core.nn.axial_rotary``), so ``q·k`` depends only on the 2-D offset between two
patches. Positions arrive as registry-gfm's ``Placement`` (or a plain ``(…, N, 3)`` (t, h, w) / ``(…, N, 2)``
(h, w) tensor); under MAE the backbone asks :meth:`Rope2D.gather_positions` for the kept tokens' positions.
The backbone leaves prefix tokens (cls) unrotated: they are position-free, so scores between the cls token
and a patch see the patch's absolute cell (as in RoPE-ViT); patch-to-patch scores see offsets only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from registry_core.nn import apply_rotary, axial_rotary, gather_tokens
from registry_geoextras.specs import Rope2DConfig
from registry_gfm import Placement

__all__ = ["Rope2D", "build"]


class Rope2D(nn.Module):
    """``rotate(q, k, positions) -> (q, k)`` for ``(B, H, T, head_dim)`` queries and keys; no parameters."""

    mode = "rotary"
    grid = 2
    name = "rope-2d"

    def __init__(self, head_dim: int | None = None, base: float = 100.0) -> None:
        super().__init__()
        if head_dim is not None and head_dim % 4:
            raise ValueError(f"positional encoder 'rope-2d' needs a head_dim divisible by 4, got {head_dim}")
        self.head_dim = head_dim
        self.base = base

    def coordinates(self, positions: Any) -> torch.Tensor:
        """``(…, T, 2)`` (row, column) of each token, from a Placement or a ``(…, T, 3 | 2)`` tensor."""
        if positions is None:
            raise ValueError("positional encoder 'rope-2d' needs the patch positions (the tokenizer's 'positions'): "
                             "a patch grid cannot be guessed from the token count")
        pos = positions.positions if isinstance(positions, Placement) else torch.as_tensor(positions)
        if pos.dim() not in (2, 3) or pos.shape[-1] not in (2, 3):
            raise ValueError(f"positional encoder 'rope-2d': positions must be (T, 3) / (B, T, 3) (t, h, w) or "
                             f"(T, 2) / (B, T, 2) (h, w) patch coordinates, got shape {tuple(pos.shape)}")
        return pos[..., -2:]

    def gather_positions(self, positions: Any, index: torch.Tensor) -> torch.Tensor:
        """The kept tokens' ``(B, T_keep, 2)`` coordinates, in ``index`` order (the backbone's token dropping)."""
        pos = self.coordinates(positions)
        if pos.dim() == 2:
            pos = pos.expand(index.shape[0], *pos.shape)  # shared by the batch -> one row per sample
        return gather_tokens(pos, index)

    def rotate(self, q: torch.Tensor, k: torch.Tensor, positions: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        dim = q.shape[-1]
        if dim % 4 or (self.head_dim is not None and dim != self.head_dim):
            raise ValueError(f"positional encoder 'rope-2d' expects head_dim {self.head_dim or 'divisible by 4'}, "
                             f"got {dim}")
        pos = self.coordinates(positions).to(q.device)
        if pos.shape[-2] != q.shape[-2]:
            raise ValueError(f"positional encoder 'rope-2d': positions cover {pos.shape[-2]} tokens, attention has "
                             f"{q.shape[-2]}")
        dims = (dim // 2, dim // 2)
        cos, sin = axial_rotary(pos, dims, base=self.base)  # (T, hd) or (B, T, hd)
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        if cos.dim() == 3:
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, hd): broadcast over heads
        return apply_rotary(q, cos, sin, dims=dims), apply_rotary(k, cos, sin, dims=dims)


def build(config: Rope2DConfig) -> Rope2D:
    head_dim = None
    if config.embed_dim is not None and config.heads is not None:
        head_dim = config.embed_dim // config.heads  # divisibility checked by the config
    return Rope2D(head_dim, config.base)
