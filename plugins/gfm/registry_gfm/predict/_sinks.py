"""Where predictions go: a Zarr raster written by regions from any worker, and its conversion to a COG.

The Zarr layout is the datacube's (``image`` (time, band, y, x), ``valid`` (time, y, x), coords and the
attrs ``crs_wkt``, ``epsg``, ``transform``, ``bands``, ``complete``), so ``open_cube`` reads a prediction
like an ingest, and ``predict`` can take one as input. Outputs are built under a hidden temporary name
next to the target and renamed into place at the end: an existing output is replaced only when asked,
and never left half-written.
"""

from __future__ import annotations

import atexit
import os
import uuid
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from registry_core import OutputPathError
from registry_core.atomic import mark_output, output_kind, removal_problem, remove_written, replace_dir
from registry_gfm.errors import PredictError

__all__ = ["FORMATS", "OUTPUT_TAG", "PREDICT_KIND", "RasterMeta", "check_output", "create_zarr", "finish_zarr",
           "local_paths", "predict_kind", "publish", "staging",
           "write_zarr_block", "zarr_to_cog"]

#: Output formats by file suffix.
FORMATS = {".tif": "cog", ".tiff": "cog", ".zarr": "zarr"}
#: The output kind a prediction is marked with (a store's marker file, a GeoTIFF's tag), so --overwrite
#: replaces an earlier prediction and nothing else.
PREDICT_KIND = "predict"
#: The GeoTIFF metadata tag holding the output kind.
OUTPUT_TAG = "REGISTRY_CORE_OUTPUT"
#: Tile side of the COG (and of its overviews, which GDAL adds until the image fits in one tile).
COG_BLOCK = 256
#: GDAL's block cache while converting to a COG. With GDAL's default (5% of RAM) the peak grew with the
#: scene (3-band float32: 645 MB at 4000^2 px); with 64 MB it stays flat (385 MB at 2000^2, 392 MB at 4000^2).
_GDAL_CACHE_BYTES = 64 << 20


@dataclass(frozen=True)
class RasterMeta:
    """What an output raster records besides its pixels."""

    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    #: One name per output band (class names, probability names or feature names).
    bands: tuple[str, ...]
    dtype: str
    nodata: float
    #: Class names of a class map (its values index them), else None.
    classes: tuple[str, ...] | None = None
    time: np.datetime64 | None = None
    #: Extra attrs (the input, the model): JSON-safe.
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def epsg(self) -> int | None:
        from pyproj import CRS

        code = CRS.from_user_input(self.crs_wkt).to_epsg()
        return int(code) if code is not None else None


def check_output(path: str | Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> tuple[Path, str]:
    """The output path (absolute) and format; refuses an unknown suffix, a missing folder, an existing output
    without ``overwrite``, and with it anything but an earlier prediction (never an input, a link or a folder
    this project did not write)."""
    out = Path(path).absolute()
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise PredictError(f"--output {path}: unknown format {out.suffix or '(no suffix)'!r}; expected a .tif / "
                           ".tiff (Cloud-Optimized GeoTIFF) or .zarr path, or polygons: .gpkg, .geojson, .fgb, .parquet")
    if not out.parent.is_dir():
        raise PredictError(f"--output {path}: folder {out.parent} does not exist")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise PredictError(f"--output {path} exists; pass --overwrite to replace it (it is left untouched)")
    problem = removal_problem(out, PREDICT_KIND, inputs=local_paths(inputs), marked=predict_kind)
    if problem:
        raise PredictError(f"--output --overwrite refused: {problem}")
    return out, fmt


def local_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The paths among ``paths`` that name local files (not URLs)."""
    return [Path(p) for p in paths if "://" not in str(p)]


def predict_kind(path: Path) -> str | None:
    """The output kind ``path`` is marked with: a GeoTIFF's ``REGISTRY_CORE_OUTPUT`` tag, a store's marker file."""
    if path.is_symlink() or not path.is_file():
        return output_kind(path)
    import rasterio

    try:
        with rasterio.open(path) as src:
            tag = src.tags().get(OUTPUT_TAG)
    except Exception:  # not a raster rasterio reads: not an output of ours
        return None
    return tag if isinstance(tag, str) else None


#: The tags of predict's staging paths beside an output (see :func:`staging`).
STAGING_TAGS = ("tmp", "blocks.zarr", "probs")


def sweep_staging(out: Path) -> list[Path]:
    """Remove the staging paths a killed earlier predict to ``out`` left; call it holding ``out``'s writer lock.

    Only names :func:`staging` makes for this output match (``.NAME.TAG-PID-HEX8``), and with the lock held no
    other predict is writing them. Returns what was removed.
    """
    import re

    tags = "|".join(re.escape(t) for t in STAGING_TAGS)
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(?:{tags})-\d+-[0-9a-f]{{8}}")
    stale = sorted(p for p in out.parent.glob(f".{out.name}.*") if pattern.fullmatch(p.name))
    for path in stale:
        remove_written(path)
    return stale


@contextmanager
def staging(out: Path, tag: str) -> Iterator[Path]:
    """A hidden temporary path next to ``out`` (same file system, so the final rename is atomic); removed
    on exit unless it was published."""
    tmp = out.with_name(f".{out.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
    except BaseException:
        # Interrupted (Ctrl-C) or failed: block writes may still be in flight on dask's worker threads and zarr's IO
        # loop, and land after a removal. Remove once they settle, and again at exit, once the worker threads have
        # been joined and zarr's loop has drained (atexit runs after both, and this handler before zarr's own).
        _drain_zarr_writes(ZARR_DRAIN_SECONDS)
        remove_written(tmp)
        atexit.register(_remove_at_exit, tmp)
        raise
    finally:
        remove_written(tmp)


#: Longest wait for zarr's in-flight writes before a staging path is removed (and again at exit).
ZARR_DRAIN_SECONDS = 10.0


def _drain_zarr_writes(timeout: float) -> None:
    """Wait (at most ``timeout`` s) until zarr's IO event loop runs no task: no chunk write is left in flight."""
    import asyncio
    import sys
    import time

    sync = sys.modules.get("zarr.core.sync")
    loop = getattr(sync, "loop", [None])[0] if sync is not None else None
    if loop is None or not loop.is_running():
        return

    async def pending() -> int:
        return sum(1 for task in asyncio.all_tasks() if task is not asyncio.current_task())

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if asyncio.run_coroutine_threadsafe(pending(), loop).result(timeout=1.0) == 0:
                return
        except Exception:  # the loop stopped or is stuck: nothing more to wait for here
            return
        time.sleep(0.05)


def _remove_at_exit(tmp: Path) -> None:
    _drain_zarr_writes(ZARR_DRAIN_SECONDS)
    remove_written(tmp)


def publish(tmp: Path, out: Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> None:
    """Mark the finished ``tmp`` as a prediction and rename it to ``out``; an existing ``out`` is replaced only with
    ``overwrite``, and only when it is an earlier prediction (see ``check_output``)."""
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise PredictError(f"--output {out} appeared while predicting; pass --overwrite to replace it")
    if tmp.is_dir():
        mark_output(tmp, PREDICT_KIND)
    try:
        replace_dir(tmp, out, kind=PREDICT_KIND, inputs=local_paths(inputs), marked=predict_kind)
    except OutputPathError as exc:
        raise PredictError(f"--output --overwrite refused: {exc}") from None


def create_zarr(store: Path, meta: RasterMeta, shape: tuple[int, int, int], chunk: int) -> None:
    """An empty datacube-layout store for a (bands, height, width) raster in chunks of ``chunk`` pixels."""
    import dask.array as da
    import xarray as xr
    import zarr

    from registry_gfm.cube.store import array_encoding

    bands, height, width = shape
    a, _, c, _, e, f = meta.transform
    time = np.array([meta.time if meta.time is not None else np.datetime64("NaT")], dtype="datetime64[ns]")
    ds = xr.Dataset(
        {
            # never computed: to_zarr(compute=False) writes metadata and coordinates only
            "image": (("time", "band", "y", "x"), da.zeros((1, bands, height, width), dtype=meta.dtype,
                                                            chunks=(1, bands, chunk, chunk))),
            "valid": (("time", "y", "x"), da.zeros((1, height, width), dtype="uint8", chunks=(1, chunk, chunk))),
        },
        coords={"time": time, "band": np.array(meta.bands, dtype=object),
                "y": f + e * (np.arange(height) + 0.5), "x": c + a * (np.arange(width) + 0.5)},
    )
    encoding = {**array_encoding(bands, chunk, meta.dtype, meta.nodata),
                "time": {"units": "nanoseconds since 1970-01-01", "dtype": "int64"}}
    ds.to_zarr(str(store), mode="w-", compute=False, zarr_format=3, encoding=encoding, consolidated=False)
    zarr.open_group(str(store), mode="r+").attrs.update({
        "crs_wkt": meta.crs_wkt,
        "epsg": meta.epsg,
        "transform": list(meta.transform),
        "nodata": None if np.isnan(meta.nodata) else meta.nodata,
        "band_names": list(meta.bands),
        "bands": [{"name": b, "scale": 1.0, "offset": 0.0} for b in meta.bands],
        "classes": list(meta.classes) if meta.classes is not None else None,
        "chunk_size": chunk,
        "provenance": dict(meta.provenance),
        "ingest_status": "incomplete",
        "complete": False,
    })


def write_zarr_block(block: np.ndarray, *, store: str, nodata: float, block_info: dict[Any, Any] | None = None
                     ) -> np.ndarray:
    """Write one (bands, h, w) block at its place in ``store`` (a dask ``map_blocks`` function, any worker);
    its ``valid`` is where the block is not ``nodata`` (NaN for floats). Returns the valid pixel count."""
    import zarr

    if block_info is None:
        raise TypeError("write_zarr_block runs under dask map_blocks, which passes block_info")
    (_, _), (y0, y1), (x0, x1) = block_info[0]["array-location"]
    valid = ~np.isnan(block).any(axis=0) if np.isnan(nodata) else (block != nodata).all(axis=0)
    config = {"write_empty_chunks": True}
    image = zarr.open_array(store, path="image", mode="r+", zarr_format=3, config=config)
    image[0:1, :, y0:y1, x0:x1] = block[None]
    zarr.open_array(store, path="valid", mode="r+", zarr_format=3, config=config)[0:1, y0:y1, x0:x1] = \
        valid.view(np.uint8)[None]
    return np.full((1, 1, 1), np.count_nonzero(valid), np.int64)


def finish_zarr(store: Path) -> None:
    """Mark the store complete and consolidate its metadata, as a finished ingest is."""
    from registry_gfm.cube.store import finish_store

    finish_store(store)


def zarr_to_cog(store: Path, cog: Path, meta: RasterMeta) -> None:
    """Convert a finished store to a Cloud-Optimized GeoTIFF ``cog``, one chunk at a time.

    The chunks go by windows into a tiled GeoTIFF beside it, which GDAL's COG driver then copies with
    deflate compression and overviews (nearest for integer class maps, average otherwise).
    """
    import rasterio
    import rasterio.shutil
    import zarr
    from rasterio.transform import Affine
    from rasterio.windows import Window

    image = zarr.open_array(str(store), path="image", mode="r")
    _, bands, height, width = image.shape
    chunk = image.chunks[2]
    stage = cog.with_name(cog.name + ".stage.tif")
    profile = {"driver": "GTiff", "dtype": meta.dtype, "count": bands, "height": height, "width": width,
               "crs": meta.crs_wkt, "transform": Affine(*meta.transform), "nodata": meta.nodata, "tiled": True,
               "blockxsize": COG_BLOCK, "blockysize": COG_BLOCK, "compress": "lzw", "bigtiff": "if_safer"}
    try:
        with rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_BYTES), warnings.catch_warnings(), \
                rasterio.open(stage, "w", **profile) as dst:
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            for y0 in range(0, height, chunk):
                for x0 in range(0, width, chunk):
                    data = np.asarray(image[0, :, y0 : y0 + chunk, x0 : x0 + chunk])
                    dst.write(data, window=Window(x0, y0, data.shape[2], data.shape[1]))
            for i, name in enumerate(meta.bands, start=1):
                dst.set_band_description(i, name)
            if meta.classes is not None:
                import json

                dst.update_tags(classes=json.dumps(list(meta.classes)))
            if meta.time is not None and not np.isnat(meta.time):  # TIFF's own date tag, which predict reads back
                stamp = np.datetime_as_string(np.datetime64(meta.time, "s"))
                dst.update_tags(TIFFTAG_DATETIME=stamp.replace("-", ":").replace("T", " "))
            dst.update_tags(**{OUTPUT_TAG: PREDICT_KIND})  # what marks the file as ours (--overwrite)
        with rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_BYTES):
            rasterio.shutil.copy(stage, cog, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=COG_BLOCK,
                                 BIGTIFF="IF_SAFER",
                                 RESAMPLING="NEAREST" if np.dtype(meta.dtype).kind in "iub" else "AVERAGE")
    finally:
        remove_written(stage)
