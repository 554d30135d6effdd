"""Helpers shared by the 1D positional encoders: default positions and their validation."""

from __future__ import annotations

import torch

#: Used when neither the user nor composition set ``max_positions``.
DEFAULT_MAX_POSITIONS = 1024


def span(name: str, positions: torch.Tensor | None, length: int) -> tuple[torch.Tensor | None, int]:
    """``(positions as long or None, table rows needed)``; None means ``0..length-1``.

    The default needs no look at device memory (no GPU sync per layer); explicit positions are read once
    to size the table and to reject negatives.
    """
    if positions is None:
        return None, length
    if positions.shape[-1] != length:
        raise ValueError(
            f"positional encoder {name!r}: positions cover {positions.shape[-1]} tokens, the input has {length}"
        )
    pos = positions.long()
    if pos.numel() == 0:
        return pos, 1
    lo, hi = (int(v) for v in torch.stack([pos.min(), pos.max()]).tolist())
    if lo < 0:
        raise ValueError(f"positional encoder {name!r}: positions must be >= 0, got {lo}")
    return pos, hi + 1


def lookup(table: torch.Tensor, positions: torch.Tensor | None, length: int) -> torch.Tensor:
    """Rows of ``table`` for ``positions``: ``(T, ...)`` or ``(B, T, ...)``; a slice for the default."""
    return table[:length] if positions is None else table[positions]


def check_range(name: str, needed: int, max_positions: int) -> None:
    """Raise when a position falls outside ``[0, max_positions)`` (a table lookup would fail obscurely)."""
    if needed > max_positions:
        raise ValueError(
            f"positional encoder {name!r}: positions must lie in [0, {max_positions}), got up to {needed - 1}; "
            "raise max_positions"
        )
