"""Land-cover labels on a datacube's grid: a label raster reprojected (nearest) once and cached next to the store.

A label raster is a single-band GeoTIFF / COG in any CRS. Its pixels are reprojected onto the datacube's
grid with nearest resampling, their raster values turned into class indices ``0 .. num_classes-1``
(through ``label_values`` when the raster codes classes differently), and every pixel without a label
(the raster's nodata, outside the raster) set to ``ignore_index``. The result is saved as
``<store>.labels-<key>.npy`` (``key`` hashes the raster's bytes, the store's fingerprint and the options)
and memory-mapped by every process (in the temp folder when the store's folder is read-only), so chips read labels without holding the scene in memory.

A label source may also be a variable of the store itself (``labels = "store:NAME"``): a (y, x) array on the
datacube grid holding class indices already.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry_core.atomic import sha256_file, write_bytes
from registry_gfm.cube.reader import CubeInfo
from registry_gfm.errors import DatacubeError

__all__ = ["STORE_PREFIX", "LabelSpec", "label_cache_path", "prepare_labels"]

log = logging.getLogger(__name__)

#: ``labels = "store:NAME"`` names a (y, x) variable of the datacube instead of a raster file.
STORE_PREFIX = "store:"


@dataclass(frozen=True)
class LabelSpec:
    """Where labels come from and how raster values become class indices."""

    source: str
    num_classes: int
    ignore_index: int = 255
    #: Raster value of class ``i`` at position ``i``; empty: raster values are the class indices.
    values: tuple[int, ...] = ()

    def lookup(self) -> dict[int, int]:
        """Raster value -> class index."""
        values = self.values or tuple(range(self.num_classes))
        return {int(v): i for i, v in enumerate(values)}


def label_cache_path(info: CubeInfo, spec: LabelSpec) -> Path:
    """``<store>.labels-<key>.npy``: ``key`` changes with the raster's bytes, the store and the options."""
    src = Path(spec.source)
    parts = {"raster": sha256_file(src), "store": info.fingerprint, "classes": spec.num_classes,
             "ignore": spec.ignore_index, "values": list(spec.values)}
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    store = Path(info.store)
    return store.with_name(f"{store.name}.labels-{key}.npy")


def _reproject(info: CubeInfo, spec: LabelSpec) -> np.ndarray:
    """The raster's class indices on the datacube grid (uint8 or int16), ``ignore_index`` where unlabelled."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.enums import Resampling
    from rasterio.transform import Affine
    from rasterio.warp import reproject, transform_bounds

    path = spec.source
    try:
        ds = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise DatacubeError(f"label raster {path} cannot be opened: {exc}") from None
    with ds:
        if ds.count != 1:
            raise DatacubeError(f"label raster {path} has {ds.count} bands; expected a single band of class values")
        if ds.crs is None:
            raise DatacubeError(f"label raster {path} has no CRS; a label raster must be georeferenced")
        if not np.issubdtype(np.dtype(ds.dtypes[0]), np.integer):
            raise DatacubeError(f"label raster {path} holds {ds.dtypes[0]} values; expected integer class codes")
        src = ds.read(1)
        nodata = ds.nodata
        src_crs, src_transform, src_bounds = ds.crs, ds.transform, ds.bounds
    height, width = info.shape[2], info.shape[3]
    dst_crs = CRS.from_wkt(info.crs_wkt) if info.crs_wkt else CRS.from_epsg(info.epsg)
    dst_transform = Affine(*info.transform)
    # class indices first (so nearest resampling moves whole classes), then onto the grid
    lookup = spec.lookup()
    fill = -1  # "no label" while reprojecting; becomes ignore_index at the end
    indices = np.full(src.shape, fill, np.int32)
    labelled = np.ones(src.shape, bool) if nodata is None else src != nodata
    if not labelled.any():
        raise DatacubeError(f"label raster {path} holds no label: every one of its {src.size} pixels is its nodata "
                            f"value {nodata:g}; expected class codes where the classes are known")
    present = np.unique(src[labelled])
    unknown = [int(v) for v in present if int(v) not in lookup]
    if unknown:
        expected = sorted(lookup) if spec.values else f"0 .. {spec.num_classes - 1}"
        raise DatacubeError(
            f"label raster {path} holds values {unknown} outside the {spec.num_classes} classes (num_classes="
            f"{spec.num_classes}; expected values {expected}, nodata {nodata}); set num_classes, or label_values to "
            "the raster's class codes"
        )
    for value, index in lookup.items():
        indices[labelled & (src == value)] = index
    out = np.full((height, width), fill, np.int32)
    reproject(indices, out, src_transform=src_transform, src_crs=src_crs, src_nodata=fill,
              dst_transform=dst_transform, dst_crs=dst_crs, dst_nodata=fill, resampling=Resampling.nearest)
    if not (out != fill).any():
        west, south, east, north = transform_bounds(src_crs, dst_crs, *src_bounds)
        a, _, c, _, e, f = info.transform
        raise DatacubeError(
            f"label raster {path} does not overlap datacube {info.store}: its bounds in the datacube's CRS are "
            f"({west:.1f}, {south:.1f}, {east:.1f}, {north:.1f}), the datacube covers ({c:.1f}, {f + e * height:.1f}, "
            f"{c + a * width:.1f}, {f:.1f})"
        )
    dtype = np.uint8 if max(spec.num_classes, spec.ignore_index) < 256 and spec.ignore_index >= 0 else np.int16
    out[out == fill] = spec.ignore_index
    return out.astype(dtype)


def _from_store(info: CubeInfo, spec: LabelSpec) -> np.ndarray:
    import zarr

    name = spec.source[len(STORE_PREFIX):]
    group = zarr.open_group(info.store, mode="r", use_consolidated=False)  # a variable added after the ingest
    if name not in group:
        raise DatacubeError(f"datacube store {info.store} has no label variable {name!r} (labels = {spec.source!r})")
    var: Any = group[name]
    arr = np.asarray(var[...])
    if arr.shape != tuple(info.shape[2:]):
        raise DatacubeError(f"label variable {name!r} of {info.store} is {arr.shape}; expected (y, x) = "
                            f"{tuple(info.shape[2:])}, the datacube's grid")
    bad = np.unique(arr[(arr != spec.ignore_index) & ((arr < 0) | (arr >= spec.num_classes))])
    if bad.size:
        raise DatacubeError(f"label variable {name!r} of {info.store} holds values {bad.tolist()} outside classes "
                            f"0 .. {spec.num_classes - 1} (ignore_index {spec.ignore_index})")
    return arr


def _save(path: Path, labels: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, labels)
    write_bytes(path, buffer.getvalue())  # atomic: concurrent ranks write the same bytes, a reader sees all or none


def _check_cache(path: Path, info: CubeInfo, spec: LabelSpec) -> None:
    """DatacubeError unless ``path`` holds what ``_reproject`` caches: integer class indices on the cube's grid.

    The cache is read memory-mapped with pickles refused, so a damaged or foreign file is named here, not met
    later as a broadcast error in a data-loader worker."""
    expected = tuple(info.shape[2:])
    try:
        cached = np.load(path, mmap_mode="r", allow_pickle=False)
        problem = None
        if cached.shape != expected:
            problem = f"its shape is {cached.shape}, the datacube's grid is {expected}"
        elif not np.issubdtype(cached.dtype, np.integer):
            problem = f"it holds {cached.dtype} values, not class indices"
    except (OSError, ValueError, EOFError) as exc:
        problem = f"it is not a readable .npy array ({exc})"
    if problem is not None:
        raise DatacubeError(f"label cache {path} (labels {spec.source} on the grid of {info.store}) is damaged or "
                            f"not ours: {problem}; delete it and it is rebuilt from the label raster")


def prepare_labels(info: CubeInfo, spec: LabelSpec) -> Path | None:
    """Check the labels and make sure they are on the datacube grid: the cached ``.npy`` of a raster (written
    on first use), or None for a store variable (read chip by chip from the store)."""
    if spec.source.startswith(STORE_PREFIX):
        _from_store(info, spec)
        return None
    if Path(spec.source).is_dir():
        raise DatacubeError(f"label raster {spec.source} is a folder; expected a raster file (a GeoTIFF of class "
                            "codes) or 'store:NAME'")
    if not Path(spec.source).is_file():
        raise DatacubeError(f"label raster {spec.source} does not exist")
    path = label_cache_path(info, spec)
    if path.exists():
        _check_cache(path, info, spec)
    else:
        log.info("reprojecting labels %s onto the grid of %s (once; cached as %s)", spec.source, info.store, path)
        labels = _reproject(info, spec)
        try:
            _save(path, labels)
        except OSError as exc:  # a read-only location: cache them in the temp folder instead
            path = Path(tempfile.gettempdir()) / path.name
            log.warning("cannot cache labels next to the store (%s); caching them at %s", exc, path)
            _save(path, labels)
    return path
