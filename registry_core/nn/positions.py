"""Position ids of any grid: default grids, shape checks, and the table helpers the encoders share.

Positions are coordinates per token: ``(T, grid)`` or ``(B, T, grid)`` (integer, or float for scaled
positions), where ``grid`` is 1 for a sequence, 2 for an image (row, column), 3 for time x image. For a
1-D grid the plain ``(T,)`` / ``(B, T)`` ids are the usual form and stay accepted. Errors name the
encoder that was given the positions and say what it expected.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["check_range", "grid_positions", "lookup", "span", "token_axis", "token_positions"]


def grid_positions(shape: Sequence[int], *, device: torch.device | str | None = None) -> torch.Tensor:
    """``(prod(shape), len(shape))`` long coordinates of every cell of a grid, in row-major order.

    ``grid_positions((h, w))[i]`` is ``(i // w, i % w)``: the order patches of an image are flattened in.
    """
    if not shape or any(n < 1 for n in shape):
        raise ValueError(f"grid_positions: every grid side must be >= 1, got {tuple(shape)}")
    axes = [torch.arange(n, device=device) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(shape))


def token_axis(grid: int) -> int:
    """The token dimension of positions of a ``grid``-D encoder: ``-1`` for 1-D ids, ``-2`` otherwise."""
    return -1 if grid == 1 else -2


def token_positions(name: str, positions: torch.Tensor, grid: int, length: int | None = None) -> torch.Tensor:
    """``positions`` checked against a ``grid``-D encoder: ``(T,)``/``(B, T)`` when grid is 1, else ``(…, T, grid)``.

    A 1-D grid also takes ``(B, T, 1)``, returned as ``(B, T)``. With ``length`` the token count must match.
    """
    if grid == 1 and positions.dim() == 3 and positions.shape[-1] == 1:
        positions = positions.squeeze(-1)  # (B, T, 1) -> (B, T)
    ok = positions.dim() in (1, 2) if grid == 1 else positions.dim() in (2, 3) and positions.shape[-1] == grid
    if not ok:
        expected = "(T,) or (B, T)" if grid == 1 else f"(T, {grid}) or (B, T, {grid})"
        raise ValueError(
            f"positional encoder {name!r}: positions must be {expected} for a {grid}-D grid, "
            f"got shape {tuple(positions.shape)}"
        )
    tokens = positions.shape[token_axis(grid)]
    if length is not None and tokens != length:
        raise ValueError(f"positional encoder {name!r}: positions cover {tokens} tokens, the input has {length}")
    return positions


def span(name: str, positions: torch.Tensor | None, length: int, grid: int = 1) -> tuple[torch.Tensor | None, int]:
    """``(positions as long or None, table rows needed)``; None means the default ``0..length-1`` (1-D).

    The default needs no look at device memory (no GPU sync per layer); explicit positions are read once
    to size the table and to reject negatives. For a grid > 1 the rows needed cover the largest coordinate.
    """
    if positions is None:
        return None, length
    pos = token_positions(name, positions, grid, length).long()
    if pos.numel() == 0:
        return pos, 1
    lo, hi = (int(v) for v in torch.stack([pos.min(), pos.max()]).tolist())
    if lo < 0:
        raise ValueError(f"positional encoder {name!r}: positions must be >= 0, got {lo}")
    return pos, hi + 1


def lookup(table: torch.Tensor, positions: torch.Tensor | None, length: int) -> torch.Tensor:
    """Rows of ``table`` for 1-D ``positions``: ``(T, ...)`` or ``(B, T, ...)``; a slice for the default."""
    return table[:length] if positions is None else table[positions]


def check_range(name: str, needed: int, max_positions: int) -> None:
    """Raise when a position falls outside ``[0, max_positions)`` (a table lookup would fail obscurely)."""
    if needed > max_positions:
        raise ValueError(
            f"positional encoder {name!r}: positions must lie in [0, {max_positions}), got up to {needed - 1}; "
            "raise max_positions"
        )
