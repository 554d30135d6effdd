"""The ``stac_loader`` kind: bundled loaders are registered components, and an installed plugin adds one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from registry_core import ConfigError, get_registry
from registry_gfm.ingest.plan import PlanError
from registry_gfm.ingest.stac_zarr import StacZarr, run_ingest

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # affine's `*` inside stackstac

LSAT7 = Path(__file__).resolve().parents[4] / "tests" / "data" / "gfm_lsat7" / "stac" / "catalog.json"
BANDS = ["blue", "green", "red", "nir08"]

# A third-party loader: plain rasterio windowed reads, one dask block per (item, band, chunk window). It
# reads each asset on its own pixel grid offset to the planned grid's corner, so it handles the native
# grid only, which is all this plugin promises.
RIO_WINDOWS = '''
from registry_core import ComponentSpec, hookimpl


@hookimpl
def registry_core_components():
    return [ComponentSpec("stac_loader", "rio-windows", __name__ + ":build",
                          "Direct rasterio windowed reads on the assets' native grid.", modality="imagery")]


def build():
    return load


def load(items, bands, grid, dtype, fill, chunk, resampling):
    import dask
    import dask.array as da
    import rasterio
    import xarray as xr
    from rasterio.windows import Window

    def read(href, row, col, h, w):
        with rasterio.open(href) as src:
            a, _, c, _, e, f = grid.transform
            assert (src.transform.a, src.transform.e) == (a, e), "rio-windows reads native grids only"
            window = Window(round((c - src.transform.c) / a) + col, round((f - src.transform.f) / e) + row, w, h)
            return src.read(1, window=window, boundless=True, fill_value=fill, out_dtype=dtype)

    def plane(href):
        rows = []
        for row in range(0, grid.height, chunk):
            h = min(chunk, grid.height - row)
            rows.append([da.from_delayed(dask.delayed(read)(href, row, col, h, min(chunk, grid.width - col)),
                                         (h, min(chunk, grid.width - col)), dtype=dtype)
                         for col in range(0, grid.width, chunk)])
        return da.block(rows)

    cube = da.stack([da.stack([plane(item.assets[b].href) for b in bands]) for item in items])
    return xr.DataArray(cube, dims=("time", "band", "y", "x"))
'''


@pytest.fixture
def with_rio_windows(make_dist: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The plugin installed, and the process-wide registry (which stac-zarr asks) reloaded to see it."""
    make_dist("riowin", RIO_WINDOWS, dist_name="rio-windows-loader")
    get_registry(reload=True)
    yield
    monkeypatch.undo()  # take the throw-away site off sys.path first, so the reload forgets the plugin
    get_registry(reload=True)


def test_bundled_loaders_are_registered_components() -> None:
    registry = get_registry()
    assert {s.name for s in registry.list("stac_loader")} >= {"stackstac", "odc-stac"}
    assert registry.kinds()["stac_loader"].plugin == "gfm"


def test_a_misspelt_loader_is_a_config_error_with_suggestions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.loader\] no stac_loader named 'stakstac'; did you mean 'stackstac'"):
        get_registry().build("data_source", "stac-zarr", catalog=str(tmp_path / "catalog.json"), assets=BANDS,
                             loader="stakstac")


def test_a_loader_gone_after_configuration_fails_before_any_search(with_rio_windows: None, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    source = get_registry().build("data_source", "stac-zarr", catalog=str(tmp_path / "nowhere" / "catalog.json"),
                                  assets=BANDS, loader="rio-windows", store=str(tmp_path / "cube.zarr"))
    assert isinstance(source, StacZarr)
    monkeypatch.setenv("REGISTRY_CORE_BLOCK", "riowin")  # the plugin is blocked from now on
    get_registry(reload=True)
    with pytest.raises(PlanError, match=r"option 'loader': no stac_loader named 'rio-windows'"):
        source.prepare(progress=False)  # a search of the missing catalog would fail differently
    assert not (tmp_path / "cube.zarr").exists()


def test_an_installed_plugin_adds_a_loader_that_gives_stackstacs_pixels(with_rio_windows: None, tmp_path: Path) -> None:
    assert get_registry().get("stac_loader", "rio-windows").plugin == "riowin"
    stores = {}
    for loader in ("stackstac", "rio-windows"):
        stores[loader] = run_ingest({"data": {"use": "stac-zarr", "catalog": str(LSAT7), "assets": BANDS,
                                              "chunk_size": 64, "loader": loader,
                                              "store": str(tmp_path / f"{loader}.zarr")}}, progress=False)
    ours, theirs = (xr.open_zarr(stores[name]) for name in ("stackstac", "rio-windows"))
    assert theirs.attrs["provenance"]["loader"] == "rio-windows"
    assert theirs["image"].dtype == ours["image"].dtype
    np.testing.assert_array_equal(theirs["image"].values, ours["image"].values)
    np.testing.assert_array_equal(theirs["valid"].values, ours["valid"].values)
    assert ours["valid"].values.any()
