"""Where chips come from: the train / val regions of a datacube and its grid or random chip windows.

A window is ``(t0, y0, x0)``: frames ``t0 .. t0+frames`` and pixels ``y0 .. y0+chip``, ``x0 .. x0+chip``.
The val split is a strip of whole chip rows at the bottom (south) of the scene and train is the rest, so
no train window ever overlaps a val window, whatever the sampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from registry_gfm.errors import DatacubeError

__all__ = ["SPLITS", "Region", "grid_windows", "random_window", "split_region", "window_rng"]

SPLITS = ("train", "val")


@dataclass(frozen=True)
class Region:
    """The pixel rows ``[y_start, y_stop)`` a split draws chips from (all columns, all times)."""

    split: str
    y_start: int
    y_stop: int


def split_region(store: str, height: int, chip: int, val_fraction: float, split: str) -> Region:
    """The rows of ``split``: the val strip holds ``round(rows * val_fraction)`` chip rows (at least one)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for zarr-chips; expected one of {', '.join(SPLITS)}")
    rows = height // chip
    if rows < 1:
        raise ValueError(f"datacube store {store} is {height} pixels high, smaller than one chip of {chip}")
    val_rows = max(1, round(rows * val_fraction)) if val_fraction > 0 else 0
    if split == "val" and val_rows == 0:
        raise DatacubeError(f"datacube store {store} has no 'val' split: val_fraction is 0; set val_fraction > 0 for one")
    if val_rows >= rows:
        raise ValueError(
            f"datacube store {store} has {rows} chip rows of {chip} pixels; val_fraction {val_fraction} leaves "
            "none for training: lower val_fraction or chip_size"
        )
    boundary = (rows - val_rows) * chip
    return Region(split, 0, boundary) if split == "train" else Region(split, boundary, height)


def grid_windows(valid: Any, region: Region, chip: int, frames: int, min_valid: float, width: int) -> np.ndarray:
    """Every whole grid window of ``region`` whose usable fraction is at least ``min_valid``; int64 (n, 3).

    ``valid`` is the (time, y, x) mask array (zarr or numpy). It is read one chip row at a time. Time
    windows are consecutive, non-overlapping runs of ``frames`` steps; a remainder shorter than ``frames``
    is left out, as are partial chips at the right and bottom edges.
    """
    ntime = int(valid.shape[0])
    ncols = width // chip
    nwin = ntime // frames
    out: list[np.ndarray] = []
    need = min_valid * frames * chip * chip
    for y0 in range(region.y_start, region.y_stop - chip + 1, chip):
        stripe = np.asarray(valid[: nwin * frames, y0 : y0 + chip, : ncols * chip]).astype(bool)
        # (time, chip, cols, chip) -> usable pixels per (time, col), then per (time window, col)
        per_time = stripe.reshape(nwin * frames, chip, ncols, chip).sum(axis=(1, 3), dtype=np.int64)
        per_window = per_time.reshape(nwin, frames, ncols).sum(axis=1)
        ok_t, ok_c = np.nonzero(per_window >= need)
        if ok_t.size:
            out.append(np.stack([ok_t * frames, np.full_like(ok_t, y0), ok_c * chip], axis=1))
    if not out:
        return np.zeros((0, 3), np.int64)
    windows = np.concatenate(out).astype(np.int64)
    order = np.lexsort((windows[:, 2], windows[:, 1], windows[:, 0]))  # by time window, then row, then column
    return windows[order]


def window_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one sample: a pure function of (seed, split, index), the same in every process."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, SPLITS.index(split), index])))


def random_window(
    rng: np.random.Generator, region: Region, ntime: int, frames: int, chip: int, width: int
) -> tuple[int, int, int]:
    """One uniformly drawn window lying wholly inside ``region``."""
    t0 = int(rng.integers(0, ntime - frames + 1))
    y0 = int(rng.integers(region.y_start, region.y_stop - chip + 1))
    x0 = int(rng.integers(0, width - chip + 1))
    return t0, y0, x0
