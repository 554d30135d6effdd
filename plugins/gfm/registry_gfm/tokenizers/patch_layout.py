"""Patchify and unpatchify chips: ``(B, C, T, H, W)`` <-> ``(B, N, tubelet·p·p·C)``, MAE's (p, q, c) order.

Tokens run over the (t, h, w) patch grid in row-major order; each vector is ordered (tubelet, p, q, c),
as MAE's and Prithvi's ``patchify`` are, so reconstruction targets line up with theirs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

__all__ = ["as_5d", "grid_from_positions", "pad_to_multiple", "patch_grid", "patchify", "token_grid_positions",
           "unpatchify"]


def as_5d(chips: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, C, 1, H, W)``; ``(B, C, T, H, W)`` unchanged; anything else an error."""
    if chips.dim() == 4:
        return chips.unsqueeze(2)
    if chips.dim() != 5:
        raise ValueError(f"chips must be (B, C, T, H, W) or (B, C, H, W), got shape {tuple(chips.shape)}")
    return chips


def patch_grid(shape: Sequence[int], patch: int, tubelet: int = 1) -> tuple[int, int, int]:
    """``(T/tubelet, H/patch, W/patch)`` for a ``(T, H, W)`` chip; sides that do not divide are an error."""
    t, h, w = (int(v) for v in shape)
    bad = [f"{name}={size} is not a multiple of {step}" for name, size, step in
           (("frames", t, tubelet), ("height", h, patch), ("width", w, patch)) if size % step]
    if bad:
        raise ValueError(
            f"chip (T, H, W) = ({t}, {h}, {w}) does not split into {tubelet}x{patch}x{patch} patches: "
            + "; ".join(bad) + " (set the tokenizer's pad = true to reflect-pad, or change chip_size)"
        )
    return t // tubelet, h // patch, w // patch


def pad_to_multiple(chips: torch.Tensor, patch: int) -> torch.Tensor:
    """Reflect-pad ``(B, C, T, H, W)`` on the bottom and right to multiples of ``patch``."""
    h, w = chips.shape[-2:]
    ph, pw = -h % patch, -w % patch
    if not ph and not pw:
        return chips
    b, c, t = chips.shape[:3]
    flat = chips.reshape(b, c * t, h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"  # reflect needs the pad to be shorter than the side
    return F.pad(flat, (0, pw, 0, ph), mode=mode).reshape(b, c, t, h + ph, w + pw)


def patchify(chips: torch.Tensor, patch: int, tubelet: int = 1) -> torch.Tensor:
    """``(B, C, T, H, W)`` (or 4-d) -> ``(B, N, tubelet·patch·patch·C)`` patch vectors."""
    x = as_5d(chips)
    b, c, t, h, w = x.shape
    gt, gh, gw = patch_grid((t, h, w), patch, tubelet)
    x = x.reshape(b, c, gt, tubelet, gh, patch, gw, patch)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # b, gt, gh, gw, tubelet, p, q, c
    return x.reshape(b, gt * gh * gw, tubelet * patch * patch * c)


def unpatchify(
    patches: torch.Tensor, patch: int, tubelet: int, channels: int, grid: Sequence[int]
) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, N, tubelet·patch·patch·C)`` -> ``(B, C, T, H, W)``."""
    gt, gh, gw = (int(v) for v in grid)
    b, n, size = patches.shape
    if n != gt * gh * gw or size != tubelet * patch * patch * channels:
        raise ValueError(
            f"patches of shape {tuple(patches.shape)} do not fit a {gt}x{gh}x{gw} grid of "
            f"{tubelet}x{patch}x{patch}x{channels} patches"
        )
    x = patches.reshape(b, gt, gh, gw, tubelet, patch, patch, channels)
    x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # b, c, gt, tubelet, gh, p, gw, q
    return x.reshape(b, channels, gt * tubelet, gh * patch, gw * patch)


def token_grid_positions(grid: Sequence[int], device: torch.device | str | None = None) -> torch.Tensor:
    """``(N, 3)`` long (t, h, w) coordinates of every token, in :func:`patchify` order."""
    from registry_core.nn import grid_positions

    return grid_positions(tuple(int(v) for v in grid), device=device)


def grid_from_positions(positions: torch.Tensor, n_patches: int, who: str = "patch tokens") -> tuple[int, int, int]:
    """The ``(gt, gh, gw)`` patch grid that :func:`token_grid_positions` made ``positions`` from.

    ``positions`` is ``(N, 3)`` / ``(B, N, 3)`` (or ``(…, 2)`` for one frame); ``n_patches`` is the patch vectors
    per sample (with band groups the tokens repeat the grid per group). ``who`` starts the error message.
    """
    pos = positions if positions.dim() == 2 else positions[0]
    if pos.shape[-1] == 2:
        pos = torch.cat([torch.zeros_like(pos[:, :1]), pos], dim=1)
    gt, gh, gw = (int(v) + 1 for v in pos[:n_patches].amax(dim=0).tolist())
    if gt * gh * gw != n_patches:
        raise ValueError(f"{who}: the batch's positions span a {gt}x{gh}x{gw} grid, which does not hold its "
                         f"{n_patches} patches per sample (a full (t, h, w) grid is needed)")
    return gt, gh, gw
