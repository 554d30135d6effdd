"""Per-band mean and standard deviation of a datacube's usable pixels, in one streaming pass.

The pass reads the store a block at a time (never the whole cube), counts only pixels its ``valid`` mask
marks usable, and merges block moments with Chan's parallel formula so large sums of large values keep
their precision. Statistics are kept in stored units (raw digital numbers) and in physical units
alongside: per time step, a linear scale/offset maps a block's mean and spread exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry_core.atomic import write_json

__all__ = ["BandStats", "compute_band_stats", "load_band_stats", "save_band_stats"]

#: Version of the saved file's layout; a file of another version is recomputed.
STATS_FORMAT = 2


@dataclass(frozen=True)
class BandStats:
    """Mean, standard deviation and usable-pixel count of each band, raw and in physical units."""

    bands: tuple[str, ...]
    #: Of the stored values (digital numbers).
    mean: tuple[float, ...]
    std: tuple[float, ...]
    #: Of ``dn * scale + offset`` with each time step's own scale and offset.
    scaled_mean: tuple[float, ...]
    scaled_std: tuple[float, ...]
    count: tuple[int, ...]
    #: Identifies the store content the statistics were computed from (``CubeInfo.fingerprint``).
    fingerprint: str


class _Moments:
    """Running count, mean and sum of squared deviations per band (Chan et al. pairwise merge)."""

    def __init__(self, nbands: int) -> None:
        self.n = np.zeros(nbands, np.float64)
        self.mean = np.zeros(nbands, np.float64)
        self.m2 = np.zeros(nbands, np.float64)

    def merge(self, band: int, k: float, mean_b: float, m2_b: float) -> None:
        """Fold in a block of ``k`` values with mean ``mean_b`` and squared-deviation sum ``m2_b``."""
        n_a = self.n[band]
        total = n_a + k
        delta = mean_b - self.mean[band]
        self.mean[band] += delta * k / total
        self.m2[band] += m2_b + delta * delta * n_a * k / total
        self.n[band] = total

    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.n)


def compute_band_stats(
    image: Any,
    valid: Any,
    band_names: Sequence[str],
    scale: np.ndarray,
    offset: np.ndarray,
    fingerprint: str,
    block_rows: int = 512,
) -> BandStats:
    """Statistics of ``image`` (time, band, y, x) over pixels where ``valid`` (time, y, x) is non-zero.

    ``image`` and ``valid`` are array-likes that slice into numpy (zarr arrays); they are read in blocks
    of ``block_rows`` rows per time step, so memory stays at one block whatever the cube's size.
    ``scale`` and ``offset`` are (time, band): a block's physical moments follow from its raw ones
    exactly (mean * s + o, squared deviations * s^2), so one pass gives both.
    A band with no usable pixel is an error naming it: its statistics would be meaningless.
    """
    ntime, nbands, height, _ = image.shape
    raw, phys = _Moments(nbands), _Moments(nbands)
    for t in range(ntime):
        for y0 in range(0, height, block_rows):
            y1 = min(height, y0 + block_rows)
            mask = np.asarray(valid[t, y0:y1, :]).astype(bool)  # (rows, x)
            k = float(mask.sum())
            if k == 0:
                continue
            block = np.asarray(image[t, :, y0:y1, :])  # (band, rows, x), native dtype
            for b in range(nbands):
                values = block[b][mask].astype(np.float64)
                mean_b = float(values.mean())
                m2_b = float(np.square(values - mean_b).sum())
                s, o = float(scale[t, b]), float(offset[t, b])
                raw.merge(b, k, mean_b, m2_b)
                phys.merge(b, k, mean_b * s + o, m2_b * s * s)
    empty = [band_names[b] for b in range(nbands) if raw.n[b] == 0]
    if empty:
        raise ValueError(
            f"cannot compute band statistics: band(s) {', '.join(empty)} have no usable pixel in the store "
            "(its valid mask is all zero); give mean and std in the config instead"
        )
    return BandStats(
        bands=tuple(band_names),
        mean=tuple(float(m) for m in raw.mean),
        std=tuple(float(v) for v in raw.std()),
        scaled_mean=tuple(float(m) for m in phys.mean),
        scaled_std=tuple(float(v) for v in phys.std()),
        count=tuple(int(n) for n in raw.n),
        fingerprint=fingerprint,
    )


def save_band_stats(stats: BandStats, path: Path) -> None:
    """Write ``stats`` as JSON atomically (temp file, fsync, rename): readers never see half a file."""
    write_json(path, {"format": STATS_FORMAT, **asdict(stats)}, indent=1)


def load_band_stats(path: Path, fingerprint: str) -> BandStats | None:
    """The statistics saved at ``path`` if they belong to the store with ``fingerprint``; else None.

    A missing, unreadable, other-format or stale file (the store was rewritten since) reads as None, so
    the caller recomputes instead of normalising with numbers from another cube.
    """
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("format") != STATS_FORMAT:
        return None
    if payload.get("fingerprint") != fingerprint:
        return None
    try:
        return BandStats(
            bands=tuple(str(b) for b in payload["bands"]),
            mean=tuple(float(m) for m in payload["mean"]),
            std=tuple(float(v) for v in payload["std"]),
            scaled_mean=tuple(float(m) for m in payload["scaled_mean"]),
            scaled_std=tuple(float(v) for v in payload["scaled_std"]),
            count=tuple(int(c) for c in payload["count"]),
            fingerprint=fingerprint,
        )
    except (KeyError, TypeError, ValueError):
        return None
