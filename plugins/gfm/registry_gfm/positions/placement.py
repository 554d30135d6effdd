"""Where each patch token is: grid coordinates plus the chip metadata the optional encodings read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Placement", "as_placement", "placement_of"]


@dataclass
class Placement:
    """``positions`` ``(N, 3)`` / ``(B, N, 3)`` (t, h, w) patch coordinates; per-sample metadata when known.

    ``time`` ``(B, T)`` Unix seconds of each frame, ``lonlat`` ``(B, 2)`` chip centre in degrees, ``gsd``
    ``(B,)`` metres per pixel. Additive imagery encoders take this as their ``positions`` argument.
    """

    positions: torch.Tensor
    time: torch.Tensor | None = None
    lonlat: torch.Tensor | None = None
    gsd: torch.Tensor | None = None


def placement_of(batch: Mapping[str, Any]) -> Placement:
    """A batch of ``patch`` tokens' placement: ``positions`` plus ``time``, ``center_lonlat``, ``gsd`` if there."""
    pos = batch["positions"]
    time, lonlat, gsd = batch.get("time"), batch.get("center_lonlat"), batch.get("gsd")
    return Placement(pos, time, lonlat, gsd)


def as_placement(positions: Any) -> Placement | None:
    """A ``Placement`` from what an encoder was given: a Placement, a position tensor, or None."""
    if positions is None or isinstance(positions, Placement):
        return positions
    return Placement(torch.as_tensor(positions))
