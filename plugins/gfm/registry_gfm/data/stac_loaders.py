"""Swappable loaders from STAC items to a lazy (time, band, y, x) dask array on a fixed grid.

Both loaders read the same normalised items (assets renamed to band names, ``proj:epsg`` filled in) onto
the exact grid the plan fixed, in the native dtype with ``fill`` outside an item's footprint, one item
per time step and chunks of (1, 1, chunk, chunk) anchored at the grid's top-left corner. Coordinates
and attrs come from the plan, not from the loader, so the two give identical arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import pystac
import xarray as xr

from registry_gfm.data.stac_plan import Grid

__all__ = ["LOADERS", "Loader", "load_odc_stac", "load_stackstac"]

#: ``(items, bands, grid, dtype, fill, chunk, resampling) -> DataArray (time, band, y, x)``.
Loader = Callable[[Sequence[pystac.Item], Sequence[str], Grid, str, float, int, str], xr.DataArray]


def _check(arr: xr.DataArray, items: Sequence[pystac.Item], bands: Sequence[str], grid: Grid, name: str) -> None:
    want = (len(items), len(bands), grid.height, grid.width)
    if tuple(arr.shape) != want:
        raise RuntimeError(f"{name} returned shape {tuple(arr.shape)} for the planned grid {want}; "
                           "the loader did not honour the grid")


def load_stackstac(items: Sequence[pystac.Item], bands: Sequence[str], grid: Grid, dtype: str, fill: float,
                   chunk: int, resampling: str) -> xr.DataArray:
    """stackstac.stack on the planned bounds, with bound snapping off so the grid is not shifted."""
    import stackstac
    from rasterio.enums import Resampling

    arr = stackstac.stack(
        list(items),
        assets=list(bands),
        epsg=grid.epsg,
        resolution=grid.resolution,
        bounds=grid.bounds,
        snap_bounds=False,
        chunksize=chunk,
        dtype=np.dtype(dtype),
        fill_value=np.dtype(dtype).type(fill),
        rescale=False,
        sortby_date=False,
        xy_coords="center",
        properties=False,
        band_coords=False,
        resampling=Resampling[resampling],
        errors_as_nodata=(),
    )
    _check(arr, items, bands, grid, "stackstac")
    # Drop stackstac's object-valued coordinates and attrs: they cannot go to Zarr as they are.
    out = xr.DataArray(arr.data, dims=("time", "band", "y", "x"))
    return out


def load_odc_stac(items: Sequence[pystac.Item], bands: Sequence[str], grid: Grid, dtype: str, fill: float,
                  chunk: int, resampling: str) -> xr.DataArray:
    """odc.stac.load on a GeoBox built from the planned affine, one item per time step (``groupby="id"``)."""
    import odc.stac
    from affine import Affine
    from odc.geo.geobox import GeoBox

    geobox = GeoBox((grid.height, grid.width), Affine(*grid.transform), f"EPSG:{grid.epsg}" if grid.epsg
                    else grid.crs_wkt)
    frames = []
    for item in items:  # one load per item keeps the time order ours, even for equal timestamps
        ds = odc.stac.load([item], bands=list(bands), geobox=geobox, chunks={"x": chunk, "y": chunk},
                           dtype=dtype, nodata=np.dtype(dtype).type(fill), groupby="id", resampling=resampling,
                           fail_on_error=True)
        frames.append(ds[list(bands)].to_array("band").transpose("time", "band", "y", "x").data)
    import dask.array as da

    data = da.concatenate(frames, axis=0)
    out = xr.DataArray(data, dims=("time", "band", "y", "x"))
    _check(out, items, bands, grid, "odc-stac")
    return out


#: Loader name (the ``loader`` option) -> function.
LOADERS: Final[dict[str, Loader]] = {"stackstac": load_stackstac, "odc-stac": load_odc_stac}
