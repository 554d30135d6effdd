"""The global tile grid of a scene and the blending window of one tile (numpy only).

Tiles are anchored at the scene origin (pixel 0, 0) and start every ``stride = tile - overlap`` pixels,
as many as it takes to cover the last row and column; the part of a tile past the scene edge reads
reflect-padded input. Because the grid depends only on the scene size, tile and overlap, every output
pixel is blended from the same tiles whatever the block, batch or scheduler that computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

__all__ = ["BLENDS", "Blend", "TileGrid", "blend_ramp", "blend_window", "reflect_index", "tiles_along"]

Blend = Literal["cosine", "linear", "none"]
#: The blending windows ``blend_window`` knows.
BLENDS: Final[tuple[str, ...]] = ("cosine", "linear", "none")


def tiles_along(size: int, tile: int, stride: int) -> int:
    """How many tiles at ``0, stride, 2·stride, ...`` it takes to cover ``size`` pixels (at least one)."""
    if size <= tile:
        return 1
    return -(-(size - tile) // stride) + 1


@dataclass(frozen=True)
class TileGrid:
    """Tiles of ``tile`` x ``tile`` input pixels every ``stride`` pixels over a ``height`` x ``width`` scene.

    ``factor`` input pixels make one output pixel (1 for per-pixel maps, the patch size for patch
    embeddings); the ``out_*`` members are in output pixels.
    """

    height: int
    width: int
    tile: int
    overlap: int
    factor: int = 1

    @property
    def stride(self) -> int:
        return self.tile - self.overlap

    @property
    def rows(self) -> int:
        return tiles_along(self.height, self.tile, self.stride)

    @property
    def cols(self) -> int:
        return tiles_along(self.width, self.tile, self.stride)

    @property
    def out_shape(self) -> tuple[int, int]:
        """(height, width) of the output raster: a partial last patch still gets an output pixel."""
        return -(-self.height // self.factor), -(-self.width // self.factor)

    @property
    def out_tile(self) -> int:
        return self.tile // self.factor

    @property
    def out_stride(self) -> int:
        return self.stride // self.factor

    def tiles_touching(self, lo: int, hi: int, axis: int) -> range:
        """Indices along ``axis`` (0 rows, 1 columns) of the tiles whose output overlaps output pixels [lo, hi)."""
        count = self.rows if axis == 0 else self.cols
        t, s = self.out_tile, self.out_stride
        first = max(0, (lo - t) // s + 1)
        last = min(count - 1, (hi - 1) // s)
        return range(first, last + 1)

    def tiles_owned(self, lo: int, hi: int, axis: int) -> range:
        """Indices along ``axis`` of the tiles whose last output pixel inside the scene lies in output pixels
        [lo, hi): each tile is owned by exactly one block of any partition of the axis, so block tasks that compute
        the tiles they own compute every tile once. (The last pixel, not the first: dask runs the blocks from the
        last to the first, and a tile then spills only into blocks whose tasks come later.)"""
        count = self.rows if axis == 0 else self.cols
        size = self.out_shape[axis]
        t, s = self.out_tile, self.out_stride
        first = max(0, -(-(lo - t + 1) // s))  # the first tile whose output reaches lo
        stop = count if hi >= size else min(count, max(0, (hi - t) // s + 1))  # tiles that end before hi
        return range(min(first, stop), stop)


def blend_ramp(size: int, overlap: int, blend: Blend) -> np.ndarray:
    """The 1-D weights (float64, all > 0) of a tile of ``size`` pixels along one axis.

    ``cosine``: a raised-cosine ramp over ``overlap`` pixels at each end, sampled at pixel centres, so the
    falling ramp of one tile and the rising ramp of the next sum to exactly 1. ``linear``: the same with
    a straight ramp. ``none``: 1 everywhere (overlapping tiles are plainly averaged).
    """
    if blend not in BLENDS:
        raise ValueError(f"blend {blend!r} is unknown; expected one of {', '.join(BLENDS)}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap {overlap} must be at least 0 and smaller than the tile ({size})")
    weights = np.ones(size, dtype=np.float64)
    if blend == "none" or overlap == 0:
        return weights
    ramp = (np.arange(overlap, dtype=np.float64) + 0.5) / overlap  # (0, 1), never 0: every pixel has weight
    if blend == "cosine":
        ramp = np.sin(0.5 * np.pi * ramp) ** 2
    # both ends ramp; a tile shorter than two overlaps takes the smaller of the two ramps
    weights[:overlap] = ramp
    weights[size - overlap :] = np.minimum(weights[size - overlap :], ramp[::-1])
    return weights


def blend_window(size: int, overlap: int, blend: Blend) -> np.ndarray:
    """The 2-D weights (size, size) float64 of one tile: the outer product of the 1-D ramps."""
    ramp = blend_ramp(size, overlap, blend)
    return np.outer(ramp, ramp)


def reflect_index(index: np.ndarray, size: int) -> np.ndarray:
    """Indices into ``[0, size)`` for any integer positions, mirrored at the edges without repeating them.

    The same mapping as ``numpy.pad(mode="reflect")`` (…, 2, 1, | 0, 1, 2, …, n-1, | n-2, …), applied as
    often as needed, so a tile larger than the scene still reads real pixels.
    """
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    folded = np.mod(index, period)
    return np.where(folded < size, folded, period - folded)
