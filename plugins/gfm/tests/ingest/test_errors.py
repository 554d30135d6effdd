"""Bad input to stac-zarr: each case gives a clear error naming the item or file, and corrupts nothing."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import xarray as xr

from registry_core import ConfigError, get_registry
from registry_gfm.cube.store import IncompleteStoreError, open_datacube
from registry_gfm.ingest.plan import PlanError
from registry_gfm.ingest.search import SearchError
from registry_gfm.ingest.stac_zarr import IngestError, StacZarr

if TYPE_CHECKING:
    from tests.gfm.conftest import IngestCatalog

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


def build(**options: Any) -> StacZarr:
    source = get_registry().build("data_source", "stac-zarr", **options)
    assert isinstance(source, StacZarr)
    return source


def test_item_missing_a_requested_asset(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    source = build(catalog=str(ingest_catalog.catalog_json), collections=["broken"], assets=["B3", "B4"],
                   store=str(tmp_path / "c.zarr"))
    with pytest.raises(PlanError, match=r"STAC item 'broken-no-b4' has no asset for band 'B4'.*B1, B2, B3, B5, B7"):
        source.prepare()
    assert not (tmp_path / "c.zarr").exists()


def test_mixed_crs_without_target_crs(ingest_catalog: IngestCatalog, stac_api: str, tmp_path: Path) -> None:
    source = build(catalog=stac_api, collections=["mixed"], assets=["B1"], store=str(tmp_path / "c.zarr"))
    with pytest.raises(PlanError, match=r"EPSG:32119: mixed-32119; EPSG:32617: mixed-32617.*set the 'crs' option"):
        source.prepare()
    # With a target CRS the same items ingest.
    build(catalog=stac_api, collections=["mixed"], assets=["B1"], crs="EPSG:32617", store=str(tmp_path / "c.zarr"),
          chunk_size=64).prepare()
    assert xr.open_zarr(tmp_path / "c.zarr").sizes["time"] == 2


def test_truncated_cog_names_the_file_and_leaves_an_incomplete_store(ingest_catalog: IngestCatalog,
                                                                     tmp_path: Path) -> None:
    store = tmp_path / "c.zarr"
    source = build(catalog=str(ingest_catalog.catalog_json), collections=["truncated"], assets=["B1", "B2"],
                   store=str(store), chunk_size=64)
    with pytest.raises(IngestError, match=r"truncated_B1\.tif"):
        source.prepare()
    with pytest.raises(IncompleteStoreError, match="incomplete"):
        open_datacube(store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = xr.open_zarr(store, consolidated=False)
    assert raw.attrs["complete"] is False
    assert int(raw["valid"].sum()) == 0  # no region of the truncated band reads as valid


def test_empty_search_names_the_catalog(ingest_catalog: IngestCatalog, stac_api: str, tmp_path: Path) -> None:
    source = build(catalog=stac_api, collections=["lsat7"], datetime="1990-01-01/1990-12-31", assets=["B1"],
                   store=str(tmp_path / "c.zarr"))
    with pytest.raises(SearchError, match=f"STAC search of {stac_api} found no items.*datetime=1990"):
        source.prepare()


def test_all_cloud_scene_is_an_error_naming_the_item_or_dropped(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    opts = dict(catalog=str(ingest_catalog.catalog_json), collections=["cloudy"], assets=["B1"],
                cloud_mask="qa_pixel", chunk_size=64)
    with pytest.raises(PlanError, match=r"STAC items cloudy-overcast have no clear pixel.*empty_scenes='drop'"):
        build(**opts, store=str(tmp_path / "a.zarr")).prepare()
    assert not (tmp_path / "a.zarr").exists()
    with pytest.warns(UserWarning, match="dropping all-cloud scenes cloudy-overcast"):
        build(**opts, empty_scenes="drop", store=str(tmp_path / "b.zarr")).prepare()
    ds = xr.open_zarr(tmp_path / "b.zarr")
    assert list(ds["item_id"].values) == ["cloudy-clear"] and bool(ds["valid"].values.all())


def test_bad_options_are_config_errors_naming_the_key() -> None:
    reg = get_registry()
    with pytest.raises(ConfigError, match="loader"):
        reg.build("data_source", "stac-zarr", catalog="x", assets=["B1"], loader="gdal")
    with pytest.raises(ConfigError, match="bbox"):
        reg.build("data_source", "stac-zarr", catalog="x", assets=["B1"], bbox=[1, 2, 3])
    with pytest.raises(ConfigError, match="scheduler"):
        reg.build("data_source", "stac-zarr", catalog="x", assets=["B1"], scheduler="gpu")
    with pytest.raises(ConfigError, match="assets"):
        reg.build("data_source", "stac-zarr", catalog="x")


def test_unknown_crs_string(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[data_source gfm:stac-zarr.crs\] option 'crs' 'UTM17' is not an EPSG code"):
        build(catalog=str(ingest_catalog.catalog_json), collections=["lsat7"], assets=["B1"], crs="UTM17",
              store=str(tmp_path / "c.zarr"))
    source = build(catalog=str(ingest_catalog.catalog_json), collections=["lsat7"], assets=["B1"], crs="EPSG:9999",
                   store=str(tmp_path / "c.zarr"))  # well formed, but no CRS has that code
    with pytest.raises(PlanError, match="crs EPSG:9999 is not a CRS pyproj knows"):
        source.prepare()
    assert not (tmp_path / "c.zarr").exists()


def test_dtype_is_never_silently_float64(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    build(catalog=str(ingest_catalog.catalog_json), collections=["s2"], assets=["B04"], store=str(tmp_path / "c.zarr"),
          chunk_size=32).prepare()
    assert xr.open_zarr(tmp_path / "c.zarr")["image"].dtype == np.uint16
