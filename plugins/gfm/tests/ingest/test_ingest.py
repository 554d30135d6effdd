"""stac-zarr ingest end to end: a real STAC API (rustac), COGs over HTTP, stackstac / odc-stac, Zarr v3."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import rasterio
import xarray as xr

from registry_core import get_registry

if TYPE_CHECKING:
    from tests.gfm.conftest import IngestCatalog
from registry_gfm.cube.store import DatacubeError
from registry_gfm.ingest.stac_zarr import StacZarr, run_ingest

BANDS = ["B1", "B2", "B3", "B4", "B5", "B7"]

pytestmark = [
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # affine's `*` inside stackstac
    pytest.mark.filterwarnings("ignore:The 'shapely.ops.transform:DeprecationWarning"),  # inside odc-geo
]


def build(**options: Any) -> StacZarr:
    source = get_registry().build("data_source", "stac-zarr", **options)
    assert isinstance(source, StacZarr)
    return source


def test_api_ingest_over_http_keeps_native_grid_dtype_and_masks_clouds(
    ingest_catalog: IngestCatalog, stac_api: str, tmp_path: Path
) -> None:
    store = tmp_path / "cube.zarr"
    source = build(catalog=stac_api, collections=["lsat7"], assets=BANDS, cloud_mask="qa_pixel", store=str(store),
                   chunk_size=64)
    assert source.bands == tuple(BANDS)
    assert source.prepare() == store
    ds = xr.open_zarr(store)
    assert ds["image"].dims == ("time", "band", "y", "x") and ds["image"].dtype == np.uint8
    assert ds["valid"].dims == ("time", "y", "x")
    assert list(ds["band"].values) == BANDS
    assert ds.attrs["epsg"] == ingest_catalog.lsat7_epsg and "PROJCRS" in ds.attrs["crs_wkt"]
    # Native grid kept exactly: same transform as the source COGs, no half-pixel shift.
    assert ds.attrs["transform"] == list(ingest_catalog.lsat7_transform)[:6]
    assert ds.sizes["x"] == 192 and ds.sizes["y"] == 192
    t = ingest_catalog.lsat7_transform
    assert float(ds["x"][0]) == t.c + t.a / 2 and float(ds["y"][0]) == t.f + t.e / 2
    assert ds.attrs["complete"] is True and ds.attrs["ingest_status"] == "complete"
    meta = {b["name"]: b for b in ds.attrs["bands"]}
    assert meta["B4"]["common_name"] == "nir" and meta["B4"]["wavelength"] == pytest.approx(0.835)
    prov = ds.attrs["provenance"]
    assert [i["id"] for i in prov["items"]] == [f"lsat7-{d}" for d in ("2000-03-01", "2000-04-01", "2000-05-01")]
    assert prov["items"][0]["assets"]["B1"].startswith("http://127.0.0.1")
    assert prov["search"]["collections"] == ["lsat7"]

    image, valid = ds["image"].values, ds["valid"].values.astype(bool)
    for t_idx, item in enumerate(prov["items"]):
        for b_idx, band in enumerate(BANDS):
            with rasterio.open(ingest_catalog.root / "lsat7" / f"{item['datetime'][:10]}_{band}.tif") as src:
                expected = src.read(1)
            ok = valid[t_idx]
            np.testing.assert_array_equal(image[t_idx, b_idx][ok], expected[ok])
            assert (image[t_idx, b_idx][~ok] == 0).all()  # masked pixels are nodata
    assert list(ingest_catalog.band_ids) == BANDS
    for t_idx, ((rows, cols), _bit) in ingest_catalog.clouds.items():
        assert not valid[t_idx][rows, cols].any()  # the cloud / shadow rectangles are masked
    assert valid[0].all()  # the crop has no nodata and date 0 is clear


def test_stackstac_and_odc_stac_give_the_same_pixels(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    cubes = []
    for loader in ("stackstac", "odc-stac"):
        store = tmp_path / f"{loader}.zarr"
        build(catalog=str(ingest_catalog.catalog_json), collections=["lsat7"], assets=["blue", "red", "nir"],
              cloud_mask="qa_pixel", loader=loader, store=str(store), chunk_size=64).prepare()
        cubes.append(xr.open_zarr(store).load())
    a, b = cubes
    np.testing.assert_array_equal(a["image"].values, b["image"].values)
    np.testing.assert_array_equal(a["valid"].values, b["valid"].values)
    assert a.attrs["transform"] == b.attrs["transform"]
    assert list(a["band"].values) == ["blue", "red", "nir"]  # chosen by eo:bands common name


def test_landsat_like_grid_is_not_shifted_and_union_of_footprints(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    store = tmp_path / "utm.zarr"
    build(catalog=str(ingest_catalog.catalog_json), collections=["utm"], assets=["red", "nir08"], store=str(store),
          chunk_size=32).prepare()
    ds = xr.open_zarr(store)
    a, _, c, _, e, f = ds.attrs["transform"]
    assert (a, e) == (30.0, -30.0) and (c, f) == (600015.0, 3900015.0)  # the 15 m offset grid survives
    assert ds.sizes["x"] == 100 + 37 and ds.sizes["y"] == 90 + 21  # union of the two footprints
    assert ds["image"].dtype == np.uint16
    with rasterio.open(ingest_catalog.root / "utm" / "utm1_SR_B4.tif") as src:
        expected = src.read(1)
    np.testing.assert_array_equal(ds["image"].values[1, 0, 21:, 37:], expected)
    assert not ds["valid"].values[1, :21, :].any()  # outside item 1's footprint
    assert ds.attrs["bands"][0]["scale"] == pytest.approx(2.75e-05) and ds.attrs["bands"][0]["offset"] == -0.2


def test_reprojection_to_a_target_crs_and_resolution_keeps_dtype(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    store = tmp_path / "utm_from_lcc.zarr"
    build(catalog=str(ingest_catalog.catalog_json), collections=["lsat7"], datetime="2000-03-01", assets=["B3"],
          crs="EPSG:32617", resolution=60, resampling="nearest", store=str(store), chunk_size=32).prepare()
    ds = xr.open_zarr(store)
    assert ds.attrs["epsg"] == 32617 and ds.attrs["transform"][0] == 60.0
    assert ds["image"].dtype == np.uint8
    assert ds.attrs["transform"][2] % 60 == 0  # a reprojected grid snaps to multiples of the resolution
    assert 0.5 < ds["valid"].values.mean() < 1.0  # the rotated footprint leaves nodata corners


def test_sentinel2_baseline_offset_and_scl_mask(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    store = tmp_path / "s2.zarr"
    build(catalog=str(ingest_catalog.catalog_json), collections=["s2"], assets=["red", "nir"], cloud_mask="scl",
          store=str(store), chunk_size=32).prepare()
    ds = xr.open_zarr(store)
    # Baseline 03.01 -> offset 0; 05.09 (>= 04.00) -> -0.1, kept per time since it changes between items.
    np.testing.assert_allclose(ds["offset"].values, [[0.0, 0.0], [-0.1, -0.1]])
    np.testing.assert_allclose(ds["scale"].values, 0.0001)
    assert ds.attrs["bands"][0]["scale_offset_vary_in_time"] is True
    valid = ds["valid"].values.astype(bool)
    assert not valid[:, :16].any() and valid[:, 16:].all()  # class 9 cloud masked, class 6 water kept


def test_prepare_is_idempotent_and_refuses_a_different_ingest(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    store = tmp_path / "idem.zarr"
    opts = dict(catalog=str(ingest_catalog.catalog_json), collections=["lsat7"], assets=["B1", "B2"],
                store=str(store), chunk_size=64)
    build(**opts).prepare()
    chunk_files = {p: p.stat().st_mtime_ns for p in (store / "image").rglob("*") if p.is_file()}
    build(**opts).prepare()
    assert {p: p.stat().st_mtime_ns for p in chunk_files} == chunk_files  # nothing rewritten
    with pytest.raises(DatacubeError, match="holds a different ingest"):
        build(**{**opts, "assets": ["B1", "B3"]}).prepare()


def test_dataset_returns_whole_time_slices(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    store = tmp_path / "ds.zarr"
    source = build(catalog=str(ingest_catalog.catalog_json), collections=["lsat7"], assets=["B1", "B4"],
                   cloud_mask="qa_pixel", store=str(store), chunk_size=64)
    with pytest.raises(DatacubeError, match="no datacube"):
        source.dataset("train")
    source.prepare()
    train, val = source.dataset("train"), source.dataset("val")
    assert (len(train), len(val), len(source.dataset("all"))) == (2, 1, 3)
    sample = val[0]
    assert sample["image"].shape == (2, 192, 192) and sample["image"].dtype == np.uint8
    assert sample["valid"].dtype == bool and sample["bands"] == ["B1", "B4"]
    assert sample["time"].startswith("2000-05-01") and sample["item_id"] == "lsat7-2000-05-01"
    with pytest.raises(ValueError, match="split 'test'"):
        source.dataset("test")


def test_run_ingest_from_a_pipeline_mapping(ingest_catalog: IngestCatalog, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "cli.zarr"
    pipeline = {"data": {"use": "stac-zarr", "catalog": str(ingest_catalog.catalog_json), "collections": ["lsat7"],
                         "assets": ["B2"], "query": {"eo:cloud_cover": {"lt": 5}}, "store": str(store),
                         "chunk_size": 64}}
    assert run_ingest(pipeline, progress=True) == store
    assert "ingest cli.zarr" in capsys.readouterr().err  # the tqdm bar
    ds = xr.open_zarr(store)
    assert list(ds["item_id"].values) == ["lsat7-2000-03-01"]


@pytest.mark.slow
def test_cli_ingest_of_a_pipeline_toml(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    store = tmp_path / "toml.zarr"
    toml = tmp_path / "ingest.toml"
    toml.write_text(f"""[data]
use = "stac-zarr"
catalog = "{ingest_catalog.catalog_json.as_posix()}"
collections = ["s2"]
assets = ["red", "nir"]
cloud_mask = "scl"
chunk_size = 32
store = "{store.as_posix()}"
""")
    out = subprocess.run([sys.executable, "-m", "registry_core", "ingest", str(toml)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    ds = xr.open_zarr(store)
    assert ds.attrs["complete"] is True and list(ds["band"].values) == ["red", "nir"]


def test_static_catalog_served_over_http_reads_cogs_over_http(ingest_catalog: IngestCatalog, http_files: str,
                                                              tmp_path: Path) -> None:
    local, remote = tmp_path / "local.zarr", tmp_path / "remote.zarr"
    opts = dict(collections=["s2"], assets=["red", "nir"], cloud_mask="scl", chunk_size=32)
    build(catalog=str(ingest_catalog.catalog_json), store=str(local), **opts).prepare()
    build(catalog=f"{http_files}/stac/catalog.json", store=str(remote), **opts).prepare()
    a, b = xr.open_zarr(local), xr.open_zarr(remote)
    assert b.attrs["provenance"]["items"][0]["assets"]["red"].startswith(http_files)
    np.testing.assert_array_equal(a["image"].values, b["image"].values)
    np.testing.assert_array_equal(a["valid"].values, b["valid"].values)


def test_a_second_ingest_into_one_store_is_refused(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    from registry_core import OutputPathError
    from registry_core.atomic import writer_lock

    store = tmp_path / "cube.zarr"
    source = build(catalog=str(ingest_catalog.catalog_json), collections=["utm"], assets=["red", "nir08"],
                   store=str(store), chunk_size=32)
    busy = pytest.raises(OutputPathError, match=r"store .*cube.zarr is being written by another process")
    with writer_lock(store, "store"), busy:  # another ingest writing this store, as flock sees it
        source.prepare()
    assert not store.exists()
    source.prepare()
    assert xr.open_zarr(store).sizes["band"] == 2
