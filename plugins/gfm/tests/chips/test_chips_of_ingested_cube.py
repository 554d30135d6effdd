"""zarr-chips on a datacube made by the real stac-zarr ingest (static catalog of Landsat 7 COGs, QA cloud mask)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from registry_core import get_registry


def test_chips_from_a_stac_zarr_ingest(ingest_catalog: Any, tmp_path: Path) -> None:
    store = tmp_path / "lsat7.zarr"
    reg = get_registry()
    reg.build(
        "data_source",
        "stac-zarr",
        catalog=str(ingest_catalog.catalog_json),
        collections=["lsat7"],
        assets=["B1", "B3", "B4"],
        cloud_mask="qa_pixel",
        chunk_size=64,
        store=str(store),
    ).prepare()

    source = reg.build(
        "data_source", "zarr-chips", store=str(store), chip_size=32, frames=2, bands=["nir", "B1"], min_valid=0.5
    )
    source.prepare()
    assert source.bands == ["B4", "B1"]
    stats = source.band_stats()
    train, val = source.dataset("train"), source.dataset("val")
    assert len(train) > 0 and len(val) > 0

    ds = xr.open_zarr(str(store))
    image = ds["image"].values.astype(np.float64)  # (time, band, y, x)
    valid = ds["valid"].values.astype(bool)
    scale = ds["scale"].values if "scale" in ds.coords else np.ones(image.shape[:2])
    offset = ds["offset"].values if "offset" in ds.coords else np.zeros(image.shape[:2])
    physical = image * scale[:, :, None, None] + offset[:, :, None, None]
    names = [str(b) for b in ds["band"].values]
    idx = [names.index("B4"), names.index("B1")]
    mean = np.asarray(stats.scaled_mean)[idx]
    std = np.asarray(stats.scaled_std)[idx]
    for i in range(len(train)):
        item = train[i]
        t0, y0, x0 = (int(v) for v in item["window"])
        win = (slice(t0, t0 + 2), slice(y0, y0 + 32), slice(x0, x0 + 32))
        mask = valid[win]
        assert item["valid"].numpy().tolist() == mask.tolist()
        assert mask.mean() >= 0.5
        want = (physical[win[0], idx, win[1], win[2]] - mean[None, :, None, None]) / std[None, :, None, None]
        want = np.where(mask[:, None], want, 0.0)
        np.testing.assert_allclose(item["pixels"].numpy(), want, rtol=1e-4, atol=1e-4)
        times = ds["time"].values[win[0]].astype("datetime64[s]").astype(np.int64)
        assert item["time"].tolist() == times.tolist()
    # the stored valid mask hides the cloudy rectangle of the second date (rows 40-90, cols 50-120)
    assert not valid[1, 40:90, 50:120].any()
