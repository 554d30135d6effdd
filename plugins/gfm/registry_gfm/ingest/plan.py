"""Plan an ingest before reading pixels: which asset of each item is each band, on which output grid.

Everything here reads STAC metadata (and, only where it is missing, a COG header), so every bad-input
problem is found up front and reported with the STAC item and asset at fault: a missing asset, mixed
CRSs with no target CRS, an unreadable file. The grid keeps an item's native pixel grid whenever the
target CRS and resolution equal the native ones (bounds are snapped to the source grid, not to multiples
of the resolution, which would shift a Landsat grid by half a pixel).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pystac

from registry_core import RegistryCoreError
from registry_gfm import bands as band_catalog
from registry_gfm.ingest.cloud_mask import MASKS, CloudMask
from registry_gfm.ingest.validators import epsg_code

__all__ = [
    "MASK_BAND", "MAX_GRID_PIXELS", "BandInfo", "Grid", "IngestPlan", "PlanError", "check_grid_size", "find_asset",
    "make_plan", "parse_crs",
]

#: The key the cloud-mask asset gets in the normalised items handed to loaders.
MASK_BAND = "__mask__"
#: Most pixels a target grid may have (a 65536 x 65536 grid): a tiny ``resolution`` over a large ``bbox``
#: is refused while planning, instead of failing (or swapping) while the datacube is allocated.
MAX_GRID_PIXELS = 2**32


class PlanError(RegistryCoreError, ValueError):
    """The items cannot be ingested as asked; the message names the item, asset or key at fault."""


@dataclass(frozen=True)
class Grid:
    """The output pixel grid: CRS, north-up affine transform (a, b, c, d, e, f) and shape."""

    epsg: int | None
    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    @property
    def resolution(self) -> float:
        return self.transform[0]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        a, _, c, _, e, f = self.transform
        return c, f + e * self.height, c + a * self.width, f

    def x_centers(self) -> np.ndarray:
        a, _, c = self.transform[:3]
        return c + a * (np.arange(self.width) + 0.5)

    def y_centers(self) -> np.ndarray:
        e, f = self.transform[4], self.transform[5]
        return f + e * (np.arange(self.height) + 0.5)


@dataclass(frozen=True)
class BandInfo:
    """One output band: its name, dtype and nodata, and metadata for the store's attrs."""

    name: str
    dtype: str
    nodata: float
    common_name: str | None = None
    wavelength: float | None = None
    units: str | None = None
    #: Scale and offset of each item in time order (Sentinel-2 offsets change with processing baseline).
    scales: tuple[float, ...] = ()
    offsets: tuple[float, ...] = ()

    def metadata(self) -> dict[str, Any]:
        """JSON-safe metadata; scale/offset are the first item's (``varies`` says when the coords differ per time)."""
        return {
            "name": self.name,
            "common_name": self.common_name,
            "wavelength": self.wavelength,
            "units": self.units,
            "scale": self.scales[0],
            "offset": self.offsets[0],
            "scale_offset_vary_in_time": len(set(zip(self.scales, self.offsets))) > 1,
            "nodata": self.nodata,
            "dtype": self.dtype,
        }


@dataclass(frozen=True)
class IngestPlan:
    """Items (normalised: assets renamed to band names), bands, the grid and the output dtype."""

    items: tuple[pystac.Item, ...]
    bands: tuple[BandInfo, ...]
    grid: Grid
    dtype: str
    nodata: float
    mask: CloudMask | None = None
    mask_values: tuple[int, ...] | None = None
    #: Original asset hrefs per item id and band, for provenance.
    hrefs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)

    @property
    def times(self) -> list[Any]:
        return [it.datetime for it in self.items]


def parse_crs(value: str | int | None) -> int | None:
    """``"EPSG:32633"``, ``"32633"`` or ``32633`` -> 32633; None stays None."""
    if value is None:
        return None
    try:
        return epsg_code(value)
    except ValueError as exc:
        raise PlanError(str(exc)) from None


def _asset_epsg(item: pystac.Item, asset: pystac.Asset) -> int | None:
    for src in (asset.extra_fields, item.properties):
        if src.get("proj:epsg") is not None:
            return int(src["proj:epsg"])
        code = src.get("proj:code")
        if isinstance(code, str) and code.upper().startswith("EPSG:"):
            return int(code.split(":", 1)[1])
    return None


def _asset_field(item: pystac.Item, asset: pystac.Asset, key: str) -> Any:
    value = asset.extra_fields.get(key)
    return value if value is not None else item.properties.get(key)


def _band_fields(asset: pystac.Asset) -> tuple[dict[str, Any], dict[str, Any]]:
    """The asset's ``eo:bands[0]`` and ``raster:bands[0]`` (or STAC 1.1 ``bands[0]``) as dicts."""
    eo = (asset.extra_fields.get("eo:bands") or [{}])[0]
    raster = (asset.extra_fields.get("raster:bands") or [{}])[0]
    v11 = (asset.extra_fields.get("bands") or [{}])[0]
    if v11:
        eo = {"name": v11.get("name"), "common_name": v11.get("eo:common_name"),
              "center_wavelength": v11.get("eo:center_wavelength"), **eo}
        raster = {k: v11.get(k) for k in ("nodata", "data_type", "scale", "offset", "unit") if k in v11} | raster
    return eo, raster


def find_asset(item: pystac.Item, name: str) -> str:
    """The asset key of ``name`` in ``item``: the key itself, an ``eo`` band name / common name, or an alias."""
    if name in item.assets:
        return name
    wanted = name.lower()
    for key, asset in item.assets.items():
        eo, _ = _band_fields(asset)
        if wanted in {str(eo.get("common_name") or "").lower(), str(eo.get("name") or "").lower(), key.lower()}:
            return key
    # The band catalog knows aliases (B8A = nir08); use them only when the name means one band everywhere
    # (``B4`` is red on Sentinel-2 and Landsat 8 but NIR on Landsat 7: never guess between those).
    found = band_catalog.find_bands(name)
    if found and len({b.common_name for b in found}) == 1:
        for key, asset in item.assets.items():
            eo, _ = _band_fields(asset)
            if eo.get("common_name") == found[0].common_name:
                return key
    raster_keys = sorted(k for k, a in item.assets.items() if "data" in (a.roles or ["data"]))
    raise PlanError(f"STAC item {item.id!r} has no asset for band {name!r} (by key, eo:bands name or common name); "
                    f"its assets are {', '.join(raster_keys)}")


def _header(href: str, item_id: str) -> dict[str, Any]:
    """dtype, nodata, EPSG, transform and shape read from a COG header (only when STAC lacks them)."""
    import rasterio

    try:
        with rasterio.open(href) as src:
            return {"dtype": src.dtypes[0], "nodata": src.nodata, "epsg": src.crs.to_epsg() if src.crs else None,
                    "transform": tuple(src.transform)[:6], "shape": (src.height, src.width)}
    except Exception as exc:
        raise PlanError(f"cannot open asset {href} of STAC item {item_id!r}: {exc}") from exc


@dataclass
class _Native:
    epsg: int | None
    transform: tuple[float, ...] | None
    shape: tuple[int, int] | None


def _native(item: pystac.Item, key: str) -> _Native:
    asset = item.assets[key]
    epsg = _asset_epsg(item, asset)
    transform = _asset_field(item, asset, "proj:transform")
    shape = _asset_field(item, asset, "proj:shape")
    if epsg is None or transform is None or shape is None:
        head = _header(asset.href, item.id)
        epsg = epsg if epsg is not None else head["epsg"]
        transform = transform or head["transform"]
        shape = shape or head["shape"]
    return _Native(epsg, tuple(float(v) for v in transform[:6]), (int(shape[0]), int(shape[1])))


def _snap(lo: float, hi: float, res: float, origin: float) -> tuple[float, float]:
    """Widen [lo, hi] outward to grid lines ``origin + k * res`` (with a tolerance for float noise)."""
    k0 = math.floor((lo - origin) / res + 1e-6)
    k1 = math.ceil((hi - origin) / res - 1e-6)
    return origin + k0 * res, origin + k1 * res


def check_grid_size(grid: Grid, frames: int, bands: int, dtype: str) -> None:
    """PlanError when the grid has more than :data:`MAX_GRID_PIXELS` pixels, before anything is allocated."""
    pixels = grid.width * grid.height
    if pixels <= MAX_GRID_PIXELS:
        return
    nbytes = pixels * frames * bands * np.dtype(dtype).itemsize
    raise PlanError(
        f"the target grid is {grid.width} x {grid.height} pixels ({pixels:.3g}) at resolution {grid.resolution} "
        f"in EPSG:{grid.epsg}, more than the {MAX_GRID_PIXELS:.3g} allowed; {frames} frame(s) x {bands} band(s) "
        f"of {dtype} would take {nbytes / 2**30:.4g} GiB; raise 'resolution' or shrink 'bbox'"
    )


def make_grid(items: Sequence[pystac.Item], keys: Sequence[str], crs: int | None, resolution: float | None,
              bbox: Sequence[float] | None) -> Grid:
    """The output grid over ``items`` (their union, or ``bbox`` in lon/lat) in ``crs`` at ``resolution``."""
    from pyproj import CRS, Transformer

    natives = {(it.id, k): _native(it, k) for it in items for k in keys}
    epsgs = {n.epsg for n in natives.values()}
    if crs is None:
        if len(epsgs) > 1:
            by_epsg: dict[Any, list[str]] = {}
            for (item_id, _), n in natives.items():
                by_epsg.setdefault(n.epsg, [])
                if item_id not in by_epsg[n.epsg]:
                    by_epsg[n.epsg].append(item_id)
            detail = "; ".join(f"EPSG:{e}: {', '.join(ids)}" for e, ids in by_epsg.items())
            raise PlanError(f"the items are in different CRSs ({detail}); set the 'crs' option to reproject them")
        crs = next(iter(epsgs))
        if crs is None:
            raise PlanError(f"STAC item {items[0].id!r} has no EPSG code in proj metadata or its COG; set 'crs'")
    try:
        target = CRS.from_epsg(crs)
    except Exception as exc:  # pyproj's CRSError: a code its database does not hold
        raise PlanError(f"crs EPSG:{crs} is not a CRS pyproj knows ({exc}); expected e.g. 'EPSG:32633'") from None
    first = natives[(items[0].id, keys[0])]
    assert first.transform is not None
    native_res = min(abs(n.transform[0]) for n in natives.values() if n.transform and n.epsg == crs) \
        if any(n.epsg == crs for n in natives.values()) else None
    res = float(resolution) if resolution else native_res
    if res is None:
        raise PlanError(f"no item is natively in EPSG:{crs}; set 'resolution' (in units of EPSG:{crs})")
    if bbox is not None:
        to_target = Transformer.from_crs("EPSG:4326", target, always_xy=True)
        minx, miny, maxx, maxy = to_target.transform_bounds(bbox[0], bbox[1], bbox[2], bbox[3])
    else:
        boxes = []
        for (_, _), n in natives.items():
            assert n.transform is not None and n.shape is not None
            a, _, c, _, e, f = n.transform[:6]
            h, w = n.shape
            b = (c, f + e * h, c + a * w, f)
            if n.epsg != crs:
                b = Transformer.from_crs(CRS.from_epsg(n.epsg or 4326), target, always_xy=True).transform_bounds(*b)
            boxes.append(b)
        minx, miny = min(b[0] for b in boxes), min(b[1] for b in boxes)
        maxx, maxy = max(b[2] for b in boxes), max(b[3] for b in boxes)
    # Keep the native pixel grid when nothing is reprojected or resampled: snap to its pixel edges.
    same_grid = [n for n in natives.values() if n.epsg == crs and n.transform and math.isclose(abs(n.transform[0]), res)]
    if same_grid and same_grid[0].transform is not None:
        ox, oy = same_grid[0].transform[2], same_grid[0].transform[5]
    else:
        ox = oy = 0.0
    minx, maxx = _snap(minx, maxx, res, ox)
    miny, maxy = _snap(miny, maxy, res, oy)
    width, height = round((maxx - minx) / res), round((maxy - miny) / res)
    if width <= 0 or height <= 0:
        raise PlanError(f"the requested area is empty on a {res} grid in EPSG:{crs} (bbox {bbox})")
    return Grid(crs, target.to_wkt(), (res, 0.0, minx, 0.0, -res, maxy), width, height)


def _band_info(name: str, items: Sequence[pystac.Item], keys: Sequence[str]) -> BandInfo:
    """dtype/nodata from ``raster:bands`` (else the first COG header); names and scaling per item."""
    first_item, first_key = items[0], keys[0]
    asset = first_item.assets[first_key]
    eo, raster = _band_fields(asset)
    dtype, nodata = raster.get("data_type"), raster.get("nodata")
    if dtype is None or nodata is None:
        head = _header(asset.href, first_item.id)
        dtype = dtype or head["dtype"]
        nodata = nodata if nodata is not None else head["nodata"]
    common = eo.get("common_name")
    wavelength = eo.get("center_wavelength")
    units = raster.get("unit")
    catalog: band_catalog.Band | None = None
    for candidate in (name, first_key, common):
        if candidate:
            found = band_catalog.find_bands(str(candidate))
            if found and len({b.common_name for b in found}) == 1:
                catalog = found[0]
                break
    if catalog is not None:
        common = common or catalog.common_name
        wavelength = wavelength or catalog.wavelength
        units = units or catalog.units
    scales, offsets = [], []
    for item, key in zip(items, keys):
        _, r = _band_fields(item.assets[key])
        scale = r.get("scale")
        offset = r.get("offset")
        baseline = item.properties.get("s2:processing_baseline")
        if offset is None and baseline is not None:
            # Sentinel-2 baseline >= 04.00 stores DN + 1000; say so with an offset when STAC does not.
            offset = band_catalog.sentinel2_l2a_offset(baseline)
        scales.append(float(scale) if scale is not None else (catalog.scale if catalog else 1.0))
        offsets.append(float(offset) if offset is not None else (catalog.offset if catalog else 0.0))
    return BandInfo(name, str(np.dtype(dtype)), float(nodata if nodata is not None else 0), common,
                    float(wavelength) if wavelength is not None else None, units, tuple(scales), tuple(offsets))


def make_plan(items: Sequence[pystac.Item], assets: Sequence[str], *, crs: str | int | None = None,
              resolution: float | None = None, bbox: Sequence[float] | None = None, cloud_mask: str = "none",
              mask_asset: str | None = None, mask_values: Sequence[int] | None = None) -> IngestPlan:
    """Resolve bands and the mask asset in every item and fix the grid; PlanError names what is wrong."""
    if not assets:
        raise PlanError("option 'assets' is empty; list the bands to ingest (asset keys or common names)")
    mask = None
    if cloud_mask != "none":
        if cloud_mask not in MASKS:
            raise PlanError(f"cloud_mask {cloud_mask!r} is unknown; expected none or one of {', '.join(MASKS)}")
        mask = MASKS[cloud_mask]
    normalised, hrefs = [], {}
    keys_by_band: dict[str, list[str]] = {name: [] for name in assets}
    for item in items:
        chosen = {name: find_asset(item, name) for name in assets}
        if mask is not None:
            chosen[MASK_BAND] = find_asset(item, mask_asset or mask.asset)
        for name in assets:
            keys_by_band[name].append(chosen[name])
        copy = item.clone()
        copy.assets = {}
        if copy.datetime is None:  # an interval item stands at its start
            copy.datetime = copy.common_metadata.start_datetime
        for name, key in chosen.items():
            asset = item.assets[key].clone()
            asset.href = item.assets[key].get_absolute_href() or asset.href
            copy.add_asset(name, asset)
        epsg = _asset_epsg(item, item.assets[chosen[assets[0]]])
        if epsg is not None:  # stackstac 0.5 reads only proj:epsg; pystac 1.15 writes proj:code
            copy.properties["proj:epsg"] = epsg
            for a in copy.assets.values():
                if a.extra_fields.get("proj:code") and "proj:epsg" not in a.extra_fields:
                    a.extra_fields["proj:epsg"] = epsg
        normalised.append(copy)
        hrefs[item.id] = {name: copy.assets[name].href for name in chosen}
    grid = make_grid(normalised, list(assets), parse_crs(crs), resolution, bbox)
    infos = tuple(_band_info(name, items, keys_by_band[name]) for name in assets)
    dtypes = {b.dtype for b in infos}
    dtype = str(np.result_type(*dtypes)) if len(dtypes) > 1 else infos[0].dtype
    nodata = infos[0].nodata
    if np.issubdtype(np.dtype(dtype), np.integer) and not (
        float(nodata).is_integer() and np.iinfo(dtype).min <= nodata <= np.iinfo(dtype).max
    ):
        raise PlanError(f"band {infos[0].name!r} nodata {nodata} does not fit dtype {dtype}")
    check_grid_size(grid, frames=len(normalised), bands=len(infos) + (mask is not None), dtype=dtype)
    return IngestPlan(tuple(normalised), infos, grid, dtype, nodata, mask,
                      tuple(mask_values) if mask_values is not None else None, hrefs)
