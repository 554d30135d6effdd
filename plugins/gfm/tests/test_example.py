"""examples/lsat7-ingest.toml: the shipped static catalog ingests to a store equal to the COGs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "gfm_lsat7"


def test_example_ingest_keeps_pixels_and_grid(tmp_path: Path) -> None:
    store = tmp_path / "cube.zarr"
    out = subprocess.run(
        [sys.executable, "-m", "registry_core", "ingest", "examples/lsat7-ingest.toml", "--set", f"data.store={store}"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    ds = xr.open_zarr(store)
    assert list(ds.band.values) == ["blue", "green", "red", "nir08", "swir16", "swir22"]
    assert ds.image.dtype == np.uint8 and ds.attrs["epsg"] == 32119
    valid = ds.valid.isel(time=0).values.astype(bool)
    cogs = []
    for i, key in enumerate(["B1", "B2", "B3", "B4", "B5", "B7"]):
        with rasterio.open(DATA / f"lsat7_2000_{key}.tif") as src:
            assert list(src.transform)[:6] == ds.attrs["transform"]
            cogs.append(src.read(1))
            # usable pixels keep their values exactly (a pixel is usable where no band is nodata)
            np.testing.assert_array_equal(ds.image.isel(time=0, band=i).values[valid], cogs[-1][valid])
    np.testing.assert_array_equal(valid, np.all(np.stack(cogs) != 0, axis=0))
    assert 0.6 < valid.mean() < 0.65  # 62 %: the scene has nodata edges, widest in one band
