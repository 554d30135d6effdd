"""Rotary position embedding math (Su et al. 2021): angle tables and the rotations, 1-D and axial N-d.

Each pair of dimensions turns by ``position * base^(-2i/dim)``, so ``q·k`` depends on the distance
between the two positions only. ``rotate-half`` pairs dimension ``i`` with ``i + dim/2`` (GPT-NeoX,
LLaMA, HF); ``interleaved`` pairs ``2i`` with ``2i+1``. Axial rotary splits ``head_dim`` across the
axes of an N-d grid, each chunk turning with its own coordinate (so relative offsets per axis count).
Angles are float64; the cos/sin tables float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from registry_core.choices import ROTARY_CONVENTIONS
from registry_core.nn.positions import token_positions

__all__ = ["apply_rotary", "axial_rotary", "check_convention", "rotary_angles", "rotary_table", "rotate_half",
           "rotate_pairs"]


def check_convention(name: str, convention: str) -> None:
    """Raise unless ``convention`` is one of :data:`registry_core.choices.ROTARY_CONVENTIONS`."""
    if convention not in ROTARY_CONVENTIONS:
        raise ValueError(
            f"{name} convention must be {' or '.join(map(repr, ROTARY_CONVENTIONS))}, got {convention!r}"
        )


def rotary_angles(positions: torch.Tensor, dim: int, *, base: float = 10000.0,
                  convention: str = "rotate-half") -> torch.Tensor:
    """``(..., dim)`` float64 angles for positions ``(...)``, each pair's angle laid out per ``convention``."""
    check_convention("rotary", convention)
    inv = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
    angles = positions.to(torch.float64).unsqueeze(-1) * inv.to(positions.device)  # (..., dim/2)
    if convention == "rotate-half":
        return torch.cat((angles, angles), dim=-1)  # dims i and i + dim/2 share an angle
    return angles.repeat_interleave(2, dim=-1)  # dims 2i and 2i+1 share an angle


def rotary_table(length: int, dim: int, *, base: float = 10000.0,
                 convention: str = "rotate-half") -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)``, each ``(length, dim)`` float32, for positions ``0..length-1``."""
    angles = rotary_angles(torch.arange(length, dtype=torch.float64), dim, base=base, convention=convention)
    return angles.cos().float(), angles.sin().float()


def axial_rotary(
    positions: torch.Tensor,
    dims: Sequence[int],
    *,
    axes: Sequence[int] | None = None,
    base: float = 10000.0,
    convention: str = "rotate-half",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` ``(…, T, sum(dims))`` float32: chunk ``i`` (``dims[i]`` dims) turns with coordinate ``axes[i]``.

    ``positions`` is ``(T, grid)`` or ``(B, T, grid)`` with ``grid = max(axes) + 1`` (integer or float);
    rotate with :func:`apply_rotary` passing the same ``dims``.
    """
    axes = tuple(range(len(dims))) if axes is None else tuple(axes)
    if len(axes) != len(dims) or not dims or min(axes) < 0:
        raise ValueError(f"axial_rotary: dims {tuple(dims)} and axes {axes} must be non-empty, of one length, >= 0")
    if any(d < 2 or d % 2 for d in dims):
        raise ValueError(f"axial_rotary: every axis needs an even number of dims >= 2, got {tuple(dims)}")
    grid = max(axes) + 1
    pos = token_positions("axial rotary", positions, grid)
    if grid == 1:
        pos = pos.unsqueeze(-1)  # 1-D ids (T,) / (B, T) -> (…, T, 1)
    angles = torch.cat(
        [rotary_angles(pos[..., a], d, base=base, convention=convention) for d, a in zip(dims, axes)], dim=-1
    )  # (…, T, sum(dims))
    return angles.cos().float(), angles.sin().float()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``[x1, x2] -> [-x2, x1]`` over the last dimension split in halves."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """``(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)``: the interleaved convention."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def apply_rotary(
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    *,
    convention: str = "rotate-half",
    dims: Sequence[int] | None = None,
) -> torch.Tensor:
    """``x * cos + turn(x) * sin`` with ``cos``/``sin`` broadcast to ``x`` ``(..., T, head_dim)``.

    ``dims`` (axial rotary) splits ``head_dim`` into the chunks :func:`axial_rotary` made; ``rotate-half``
    then pairs dimensions within each chunk (``interleaved`` pairs never cross a chunk anyway).
    """
    if convention == "interleaved":
        return x * cos + rotate_pairs(x) * sin
    check_convention("rotary", convention)
    if dims is None or len(dims) == 1:
        return x * cos + rotate_half(x) * sin
    if sum(dims) != x.shape[-1]:
        raise ValueError(f"apply_rotary: axial dims {tuple(dims)} add up to {sum(dims)}, head_dim is {x.shape[-1]}")
    turned = torch.cat([rotate_half(c) for c in x.split(list(dims), dim=-1)], dim=-1)
    return x * cos + turned * sin
