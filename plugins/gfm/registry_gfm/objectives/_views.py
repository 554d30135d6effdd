"""Two views of one place for the ``contrastive`` objective: two dates, or two augmentations of one chip.

Everything here works on pixels ``(B, C, T, H, W)`` with a matching validity mask ``(B, 1, T, H, W)``
(float, 1 = usable); the objective unpatchifies the batch's ``patches`` and ``pixel_valid`` into them and
patchifies each view again. Random choices are drawn on the CPU from a given ``torch.Generator`` (or
torch's global RNG), so they are reproducible and independent of the device the model runs on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Augmentation", "View", "apply_augmentation", "draw_augmentation", "draw_crop_side", "pick_frames",
           "take_frames"]


@dataclass
class View:
    """One view of every sample: pixels ``(B, C, T', H', W')``, validity ``(B, 1, T', H', W')`` and the
    frames' times ``(B, T')`` when the batch has them; ``frames`` ``(B,)`` the token time slice each sample
    was taken from (dates), or None (augmentations)."""

    chips: torch.Tensor
    valid: torch.Tensor
    time: torch.Tensor | None = None
    frames: torch.Tensor | None = None

    def valid_fraction(self) -> torch.Tensor:
        """``(B,)`` share of usable pixels of each sample's view."""
        return self.valid.flatten(1).float().mean(dim=1)


@dataclass
class Augmentation:
    """Per-sample parameters of one augmented view, applied in this order: a square crop of ``side``
    whole patches at patch offsets ``(top, left)`` ``(B, 2)``, a horizontal flip where ``flip`` ``(B,)``,
    then ``rot`` ``(B,)`` counter-clockwise quarter turns (flip + rotation reach all 8 symmetries of a square).
    """

    side: int
    top_left: torch.Tensor
    flip: torch.Tensor
    rot: torch.Tensor


def _rand(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=generator.device if generator is not None else "cpu").cpu()


def pick_frames(frame_valid: torch.Tensor, min_valid: float, generator: torch.Generator | None) -> torch.Tensor:
    """``(B, 2)`` two different time slices per sample, uniformly among those whose valid fraction
    ``frame_valid`` ``(B, gt)`` is above ``min_valid`` (among all of them when fewer than two are)."""
    b, gt = frame_valid.shape
    if gt < 2:
        raise ValueError(f"objective 'contrastive': two dates need at least 2 time slices, the batch has {gt}")
    usable = (frame_valid.cpu() > min_valid).float()
    usable[usable.sum(dim=1) < 2] = 1.0
    # Uniform keys over the usable slices, -1 elsewhere: the two largest are a uniform ordered pair of them.
    keys = torch.where(usable > 0, _rand((b, gt), generator), torch.full((b, gt), -1.0))
    return keys.topk(2, dim=1).indices


def take_frames(x: torch.Tensor, index: torch.Tensor, tubelet: int) -> torch.Tensor:
    """``(B, C, tubelet, H, W)``: sample ``i``'s frames of time slice ``index[i]`` of ``x`` ``(B, C, T, H, W)``."""
    b, c, _, h, w = x.shape
    frames = index.to(x.device)[:, None] * tubelet + torch.arange(tubelet, device=x.device)  # (B, tubelet)
    return torch.gather(x, 2, frames[:, None, :, None, None].expand(b, c, tubelet, h, w))


def draw_crop_side(grid_hw: tuple[int, int], crop_min: float, generator: torch.Generator | None) -> int:
    """A square crop side in patches, uniform from ``crop_min`` of the shorter grid side (at least 1) to all of it."""
    short = min(grid_hw)
    lo = min(short, max(1, math.ceil(crop_min * short - 1e-9)))
    return lo + min(int(_rand((1,), generator)[0] * (short - lo + 1)), short - lo)


def draw_augmentation(batch: int, grid_hw: tuple[int, int], side: int, flips: bool, rotations: bool,
                      generator: torch.Generator | None) -> Augmentation:
    """Random parameters of one view: each sample's own place of a ``side`` x ``side`` patch crop (the side
    is the batch's, so views stack), its flip (p = 1/2) and quarter turns (0-3, uniform)."""
    gh, gw = grid_hw
    if not 1 <= side <= min(gh, gw):
        raise ValueError(f"crop side {side} does not fit a {gh}x{gw} patch grid")
    u = _rand((4, batch), generator)
    top = (u[0] * (gh - side + 1)).long().clamp(max=gh - side)
    left = (u[1] * (gw - side + 1)).long().clamp(max=gw - side)
    flip = (u[2] < 0.5) & flips
    rot = (u[3] * 4).long().clamp(max=3) * int(rotations)
    return Augmentation(side, torch.stack([top, left], dim=1), flip, rot)


def apply_augmentation(x: torch.Tensor, aug: Augmentation, patch: int) -> torch.Tensor:
    """``x`` ``(B, C, T, H, W)`` cropped to ``aug.side`` patches a side, flipped and rotated, per sample."""
    size = aug.side * patch
    out = []
    for i in range(x.shape[0]):
        top, left = (int(v) * patch for v in aug.top_left[i])
        v = x[i, ..., top:top + size, left:left + size]
        if bool(aug.flip[i]):
            v = v.flip(-1)
        out.append(torch.rot90(v, int(aug.rot[i]), dims=(-2, -1)))
    return torch.stack(out)
