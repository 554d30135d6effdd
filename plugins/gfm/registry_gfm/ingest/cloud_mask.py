"""Cloud and quality masks from a classification or QA asset: Sentinel-2 SCL, Landsat C2 QA_PIXEL, HLS Fmask.

A mask turns one QA raster into a boolean "clear" array: SCL is a class map (a pixel is masked when its
class is listed), QA_PIXEL and Fmask are bit fields (a pixel is masked when any listed bit is set).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

__all__ = ["MASKS", "CloudMask", "clear_pixels"]


@dataclass(frozen=True)
class CloudMask:
    """How one QA product encodes clouds: the asset key it usually has, and what is masked by default."""

    name: str
    #: ``"classes"``: values are class ids; ``"bits"``: values are bit positions.
    encoding: Literal["classes", "bits"]
    #: Asset key in the usual STAC metadata (Earth Search, Planetary Computer, LP DAAC).
    asset: str
    #: Classes or bits masked when the user lists none.
    default: tuple[int, ...]
    #: QA values that mean "no data" regardless of the listed classes or bits.
    fill: tuple[int, ...] = ()
    #: A QA value that reads as masked, used outside an item's footprint.
    outside: int = 0


MASKS: Final[dict[str, CloudMask]] = {
    # Sentinel-2 L2A scene classification: 0 no data, 1 saturated/defective, 3 cloud shadow,
    # 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus.
    "scl": CloudMask("scl", "classes", "scl", (0, 1, 3, 8, 9, 10)),
    # Landsat Collection 2 QA_PIXEL: bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow.
    "qa_pixel": CloudMask("qa_pixel", "bits", "qa_pixel", (0, 1, 2, 3, 4), outside=1),
    # HLS v2 Fmask: bit 1 cloud, 2 adjacent to cloud or shadow, 3 cloud shadow; 255 is fill.
    "fmask": CloudMask("fmask", "bits", "Fmask", (1, 2, 3), fill=(255,), outside=255),
}


def clear_pixels(qa: np.ndarray, mask: CloudMask, values: tuple[int, ...] | None = None) -> np.ndarray:
    """Boolean array, True where ``qa`` marks a usable pixel; ``values`` overrides the masked classes/bits."""
    chosen = mask.default if values is None else values
    qa_int = qa.astype(np.int64, copy=False)
    if mask.encoding == "classes":
        bad = np.isin(qa_int, np.asarray(chosen, dtype=np.int64))
    else:
        bits = 0
        for b in chosen:
            bits |= 1 << int(b)
        bad = (qa_int & bits) != 0
    if mask.fill:
        bad |= np.isin(qa_int, np.asarray(mask.fill, dtype=np.int64))
    result: np.ndarray = ~bad
    return result
