"""Fixed sin/cos position encodings: the 1-D table (Vaswani et al. 2017) and its N-d, per-axis form.

Frequencies are ``base^(-2i/dim)`` for ``i < dim/2``, computed in float64 and returned as float32, so a
table is the same on every device and for every length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from registry_core.nn.positions import token_positions

__all__ = ["sincos_angles", "sincos_encoding", "sinusoid_table"]


def sincos_angles(positions: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """``(..., ceil(dim/2))`` float64 angles ``p / base^(2i/dim)`` for positions ``(...)``."""
    inv = torch.exp(-math.log(base) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    return positions.to(torch.float64).unsqueeze(-1) * inv.to(positions.device)


def sinusoid_table(length: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """``(length, dim)``: even columns ``sin(p / base^(2i/dim))``, odd columns the matching ``cos``."""
    angles = sincos_angles(torch.arange(length, dtype=torch.float64), dim, base)  # (length, ceil(dim/2))
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)[:, : dim // 2]
    return table.float()


def sincos_encoding(
    positions: torch.Tensor,
    dims: Sequence[int],
    *,
    axes: Sequence[int] | None = None,
    base: float = 10000.0,
) -> torch.Tensor:
    """``(…, T, sum(dims))`` float32: block ``i`` has ``dims[i]`` channels encoding coordinate ``axes[i]``.

    ``positions`` is ``(T, grid)`` or ``(B, T, grid)`` with ``grid = max(axes) + 1`` (``(T,)``/``(B, T)``
    for one axis); ``axes`` defaults to ``0, 1, ...``. Each block is ``[sin | cos]`` halves (the MAE / Prithvi layout, unlike the
    interleaved 1-D :func:`sinusoid_table`). MAE 2-D over ``grid_positions((h, w))`` is
    ``dims=(D/2, D/2), axes=(1, 0)`` (w first); Prithvi 3-D over ``(t, h, w)`` is ``dims=(6D/16, 6D/16,
    4D/16), axes=(2, 1, 0)``.
    """
    axes = tuple(range(len(dims))) if axes is None else tuple(axes)
    if len(axes) != len(dims) or not dims:
        raise ValueError(f"sincos_encoding: dims {tuple(dims)} and axes {axes} must be non-empty and of one length")
    if any(d < 2 or d % 2 for d in dims):
        raise ValueError(f"sincos_encoding: every axis needs an even number of dims >= 2, got {tuple(dims)}")
    if min(axes) < 0:
        raise ValueError(f"sincos_encoding: axes must be >= 0, got {axes}")
    grid = max(axes) + 1
    pos = token_positions("sincos", positions, grid)
    if grid == 1:
        pos = pos.unsqueeze(-1)  # 1-D ids (T,) / (B, T) -> (…, T, 1)
    blocks = []
    for dim, axis in zip(dims, axes):
        angles = sincos_angles(pos[..., axis], dim, base)  # (…, T, dim/2)
        blocks += [angles.sin(), angles.cos()]
    return torch.cat(blocks, dim=-1).float()
