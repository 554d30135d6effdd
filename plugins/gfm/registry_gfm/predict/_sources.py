"""Open an input scene lazily: a stac-zarr datacube, a multi-band GeoTIFF / COG, or a STAC item JSON file.

Each reader returns a :class:`Scene` in the model's band order. Raster files are read by windows, each
dask chunk opening the file itself (so chunks read in parallel, in any worker); datacubes go through
``open_cube`` and the store's dask chunks; STAC assets are found with the ingest's planner.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from registry_gfm.errors import PredictError
from registry_gfm.predict._scene import Scene, check_scene, match_bands

__all__ = ["RasterWindows", "open_datacube_scene", "open_raster_scene", "open_scene", "open_stac_scene", "stack_frames"]

#: Rows and columns of one dask chunk of a raster file (rounded up to the file's own tiles).
_CHUNK = 256


class RasterWindows:
    """A raster file as a lazily sliced (bands + 1, y, x) float32 array: the bands, then the valid mask (0 / 1).

    Slicing opens the file (picklable: only the path and numbers are kept) and reads one window; the
    values are ``dn * scale + offset`` when ``physical``. A pixel is valid when GDAL's mask of every band
    says so (nodata, alpha or internal mask), it is finite, and it differs from ``nodata`` when given.
    ``grid`` (crs_wkt, transform, height, width) reads the file warped onto another grid (nearest).
    """

    def __init__(self, path: str, indexes: Sequence[int], scales: Sequence[float], offsets: Sequence[float],
                 shape: tuple[int, int], *, nodata: float | None = None,
                 grid: tuple[str, tuple[float, ...], int, int] | None = None) -> None:
        self.path, self.indexes = path, list(indexes)
        self.scales = np.asarray(scales, np.float32)[:, None, None]
        self.offsets = np.asarray(offsets, np.float32)[:, None, None]
        self.nodata, self.grid = nodata, grid
        self.shape = (len(self.indexes) + 1, *shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        import rasterio
        from rasterio.windows import Window

        bands, rows, cols = (k.indices(n) for k, n in zip(key, self.shape))
        if rows[1] <= rows[0] or cols[1] <= cols[0]:  # dask probes with empty slices
            return np.zeros((len(range(*bands)), max(0, rows[1] - rows[0]), max(0, cols[1] - cols[0])), np.float32)
        window = Window(cols[0], rows[0], cols[1] - cols[0], rows[1] - rows[0])
        with rasterio.open(self.path) as src:
            if self.grid is None:
                raw, masks = src.read(self.indexes, window=window), src.read_masks(self.indexes, window=window)
            else:
                from rasterio.transform import Affine
                from rasterio.vrt import WarpedVRT

                crs, transform, height, width = self.grid
                with WarpedVRT(src, crs=crs, transform=Affine(*transform[:6]), height=height, width=width) as vrt:
                    raw, masks = vrt.read(self.indexes, window=window), vrt.read_masks(self.indexes, window=window)
        out = np.empty((len(self.indexes) + 1, *raw.shape[1:]), np.float32)
        np.multiply(raw, self.scales, out=out[:-1], casting="unsafe")
        out[:-1] += self.offsets
        valid = (masks > 0).all(axis=0) & np.isfinite(out[:-1]).all(axis=0)
        if self.nodata is not None:
            valid &= (raw != self.nodata).all(axis=0)
        out[-1] = valid
        return out[slice(*bands)]


def _lazy(reader: RasterWindows, chunk: int, name: str) -> tuple[Any, Any]:
    """(image, valid) dask arrays over ``reader``, sharing its chunk reads."""
    import dask.array as da
    from dask.base import tokenize

    path = Path(reader.path)
    stamp = path.stat().st_mtime_ns if path.exists() else 0
    token = tokenize(reader.path, stamp, reader.indexes, reader.scales, reader.offsets, reader.nodata, reader.grid)
    stack = da.from_array(reader, chunks=(reader.shape[0], chunk, chunk), asarray=False, fancy=False,
                          name=f"read-{name}-{token}")
    return stack[:-1], stack[-1] > 0


def _open_error(path: str, exc: Exception) -> PredictError:
    return PredictError(f"cannot read input {path}: {exc}; expected a GeoTIFF / COG, a STAC item JSON file "
                        "or a stac-zarr datacube")


def _check_datacube_time(path: str, time: int, ntime: int) -> None:
    if not 0 <= time < ntime:
        raise PredictError(f"--time {time}: datacube {path} has {ntime} time steps (0 .. {ntime - 1})")


def open_raster_scene(path: str, wanted: Sequence[str], *, names: Sequence[str] | None = None,
                      physical: bool = True) -> Scene:
    """A GeoTIFF / COG: bands named by ``names`` (``--bands``) or the file's band descriptions."""
    import rasterio

    try:
        with warnings.catch_warnings(), rasterio.open(path) as src:
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # refused below, with a reason
            count, height, width = src.count, src.height, src.width
            crs_wkt = src.crs.to_wkt() if src.crs else ""
            transform = tuple(src.transform)[:6]
            descriptions = [d or "" for d in src.descriptions]
            scales, offsets = list(src.scales), list(src.offsets)
            block_h, block_w = src.block_shapes[0] if count else (_CHUNK, _CHUNK)
            when = _raster_time(src.tags())
            complex_bands = [i + 1 for i, d in enumerate(src.dtypes) if np.dtype(d).kind == "c"]
    except rasterio.errors.RasterioError as exc:
        raise _open_error(path, exc) from None
    if complex_bands:
        raise PredictError(f"input {path}: bands {complex_bands} hold complex numbers; expected real-valued pixels "
                           "(take the amplitude or the real part first)")
    if names is not None:
        if len(names) != count:
            raise PredictError(f"--bands names {len(names)} bands ({', '.join(names)}) but input {path} has {count}")
        descriptions = list(names)
    elif count and not all(descriptions):
        raise PredictError(f"input {path}: its {count} bands have no names (band descriptions); name them in "
                           f"order with --bands, e.g. --bands {','.join(wanted)}" +
                           ("" if count == len(wanted) else f" (it has {count} bands, the model needs {len(wanted)})"))
    idx = match_bands(wanted, [[d] for d in descriptions], path)
    reader = RasterWindows(path, [i + 1 for i in idx], [scales[i] if physical else 1.0 for i in idx],
                           [offsets[i] if physical else 0.0 for i in idx], (height, width))
    # chunks of whole internal tiles (at most 1024 px); a striped file gets square chunks of _CHUNK rows
    image, valid = _lazy(reader, min(max(_CHUNK, block_w), 1024) if block_h == block_w else _CHUNK, "raster")
    scene = Scene(path, image, valid, tuple(descriptions[i] for i in idx), crs_wkt,
                  (transform[0], transform[1], transform[2], transform[3], transform[4], transform[5]), when)
    return check_scene(scene)


#: GeoTIFF tags that may hold a raster's acquisition time, in the order they are believed.
_TIME_TAGS = ("ACQUISITIONDATETIME", "datetime", "TIFFTAG_DATETIME")


def _raster_time(tags: dict[str, str]) -> np.datetime64 | None:
    """The acquisition time a GeoTIFF's tags give (``TIFFTAG_DATETIME`` is ``YYYY:MM:DD HH:MM:SS``), or None: a tag
    that is no date is passed over (a file predicted alone does not need one; frames without one are refused)."""
    for key in _TIME_TAGS:
        text = tags.get(key, "").strip()
        if not text:
            continue
        if re.fullmatch(r"\d{4}:\d\d:\d\d \d\d:\d\d:\d\d", text):  # TIFF's own form
            text = text[:10].replace(":", "-") + "T" + text[11:]
        try:
            return np.datetime64(text.replace(" ", "T").removesuffix("Z"), "s")
        except ValueError:
            continue
    return None


def open_datacube_scene(path: str, wanted: Sequence[str], *, time: int = 0, physical: bool = True,
                        frames: int = 1) -> Scene:
    """Time steps ``time .. time + frames - 1`` of a stac-zarr datacube, with its per-band scale / offset and
    ``valid`` array (several frames: stacked as :func:`stack_frames` does)."""
    import dask.array as da
    import xarray as xr

    from registry_gfm.cube.reader import open_cube, select_bands

    info = open_cube(path)
    ntime, _, height, width = info.shape
    _check_datacube_time(path, time, ntime)
    if time + frames > ntime:
        raise PredictError(f"--time {time}: the model reads {frames} consecutive time steps and datacube {path} has "
                           f"{ntime}, so --time may be 0 .. {ntime - frames}" if frames <= ntime else
                           f"datacube {path} has {ntime} time step(s); the model reads {frames} per tile")
    idx = list(select_bands(info, wanted))
    ds = xr.open_zarr(info.store, consolidated=None)
    crs_wkt = info.crs_wkt
    if not crs_wkt and info.epsg is not None:
        from pyproj import CRS

        crs_wkt = CRS.from_epsg(info.epsg).to_wkt()
    scenes = []
    for t in range(time, time + frames):
        raw = ds["image"].data[t][idx]  # (bands, y, x), the store's dask chunks
        if physical:
            scale = np.asarray(info.scale[t], np.float32)[idx][:, None, None]
            offset = np.asarray(info.offset[t], np.float32)[idx][:, None, None]
            image = raw.astype(np.float32) * scale + offset
        else:
            image = raw.astype(np.float32)
        valid = ds["valid"].data[t].astype(bool)
        when = np.datetime64(info.times[t], "s") if info.times else None
        assert isinstance(image, da.Array) and (height, width) == tuple(image.shape[1:])
        scenes.append(check_scene(Scene(path, image, valid, tuple(info.bands[i].name for i in idx), crs_wkt,
                                        info.transform, when)))
    return scenes[0] if frames == 1 else stack_frames(scenes, path)


def stack_frames(scenes: Sequence[Scene], name: str) -> Scene:
    """One scene of several time steps: the frames' bands one frame after the other, each pixel NaN in the frames
    where it is not valid, and valid where any frame is. The frames must lie on one grid in the same bands."""
    import dask.array as da
    from pyproj import CRS

    first = scenes[0]
    for other in scenes[1:]:
        problems = []
        if other.shape != first.shape:
            problems.append(f"{other.shape[1]} x {other.shape[0]} pixels, not {first.shape[1]} x {first.shape[0]}")
        if not np.allclose(other.transform, first.transform, rtol=0, atol=1e-9 * max(1.0, *map(abs, first.transform))):
            problems.append(f"transform {tuple(other.transform)}, not {tuple(first.transform)}")
        if CRS.from_user_input(other.crs_wkt) != CRS.from_user_input(first.crs_wkt):
            problems.append(f"CRS {CRS.from_user_input(other.crs_wkt).to_string()}, not "
                            f"{CRS.from_user_input(first.crs_wkt).to_string()}")
        if problems:
            raise PredictError(f"input {other.path} does not lie on the grid of {first.path}: {'; '.join(problems)}; "
                               "the frames of one prediction must share one grid (warp them onto it first, e.g. "
                               "with gdalwarp, or ingest them into one datacube)")
    image = da.concatenate([da.where(s.valid[None], s.image, np.float32(np.nan)) for s in scenes])
    valid = da.stack([s.valid for s in scenes]).any(axis=0)
    sources = tuple(dict.fromkeys(p for s in scenes for p in s.inputs))
    return Scene(name, image, valid, first.bands, first.crs_wkt, first.transform, scenes[-1].time,
                 frames=len(scenes), sources=sources, times=tuple(s.time for s in scenes))


def open_stac_scene(path: str, wanted: Sequence[str], *, physical: bool = True) -> Scene:
    """A STAC item JSON file: each wanted band's asset found as the ingest finds it, read onto the item's grid."""
    import dask.array as da
    import pystac

    from registry_gfm.ingest.plan import make_plan

    try:
        item = pystac.Item.from_file(path)
    except Exception as exc:  # pystac raises many types for a file that is not a STAC item
        raise PredictError(f"cannot read STAC item {path}: {type(exc).__name__}: {exc}") from None
    plan = make_plan([item], list(wanted))
    grid, normalised = plan.grid, plan.items[0]
    images, valids = [], []
    for band in plan.bands:
        href = normalised.assets[band.name].href
        _check_asset(href, item.id, band.name)
        reader = RasterWindows(href, [1], [band.scales[0] if physical else 1.0], [band.offsets[0] if physical else 0.0],
                               (grid.height, grid.width), nodata=band.nodata, grid=_warp_to(href, grid))
        image, valid = _lazy(reader, _CHUNK, "stac")
        images.append(image)
        valids.append(valid)
    valid = da.stack(valids).all(axis=0)
    stamp = normalised.datetime
    when = np.datetime64(stamp.astimezone(dt.UTC).replace(tzinfo=None), "s") if stamp is not None else None
    scene = Scene(path, da.concatenate(images), valid, tuple(b.name for b in plan.bands), grid.crs_wkt,
                  grid.transform, when)
    return check_scene(scene)


def _check_asset(href: str, item: str, band: str) -> None:
    import rasterio

    try:
        with rasterio.open(href) as src:
            if src.count < 1:
                raise PredictError(f"asset {href} of STAC item {item!r} (band {band!r}) has no raster band")
    except rasterio.errors.RasterioError as exc:
        raise PredictError(f"cannot read asset {href} of STAC item {item!r} (band {band!r}): {exc}") from None


def _warp_to(href: str, grid: Any) -> tuple[str, tuple[float, ...], int, int] | None:
    """The grid to warp an asset onto, or None when the asset already lies on it."""
    import rasterio
    from pyproj import CRS

    with rasterio.open(href) as src:
        same = (src.crs is not None and CRS.from_user_input(src.crs.to_wkt()) == CRS.from_user_input(grid.crs_wkt)
                and np.allclose(tuple(src.transform)[:6], grid.transform) and (src.height, src.width)
                == (grid.height, grid.width))
    return None if same else (grid.crs_wkt, grid.transform, grid.height, grid.width)


def open_scene(path: str | Path | Sequence[str | Path], wanted: Sequence[str], *, names: Sequence[str] | None = None,
               time: int = 0, physical: bool = True, frames: int = 1) -> Scene:
    """The scene at ``path`` in the bands ``wanted`` (input names, in the model's order): a directory or
    ``*.zarr`` is a datacube, ``*.json`` a STAC item, anything else a raster file GDAL can open.

    ``frames`` > 1 (a model of several time steps): a datacube gives ``frames`` consecutive steps from ``time``;
    otherwise ``path`` lists one raster or STAC item per frame, put in time order when each says its date
    (GeoTIFF tags ``ACQUISITIONDATETIME``, ``datetime`` or ``TIFFTAG_DATETIME``; a STAC item's datetime).
    """
    paths = [str(path)] if isinstance(path, (str, Path)) else [str(p) for p in path]
    if not paths:
        raise PredictError("no input given; expected a GeoTIFF / COG, a STAC item JSON file or a stac-zarr datacube")
    for text in paths:
        if "://" not in text and not Path(text).exists():
            raise PredictError(f"input {text} does not exist; expected a GeoTIFF / COG, a STAC item JSON file or a "
                               "stac-zarr datacube")
    cubes = [p for p in paths if _is_cube(p)]
    if names is not None and (cubes or any(Path(p).suffix.lower() == ".json" for p in paths)):
        raise PredictError(f"--bands names the bands of a raster file; input {(cubes or paths)[0]} names its own "
                           "bands (use --band-map INPUT=MODEL to map them)")
    if cubes and len(paths) > 1:
        raise PredictError(f"input {cubes[0]} is a datacube: give it alone (its time steps are the frames, from "
                           "--time on), not with other inputs")
    if cubes:
        return open_datacube_scene(paths[0], wanted, time=time, physical=physical, frames=frames)
    if time != 0:
        raise PredictError(f"--time {time}: input {paths[0]} has a single time step; --time applies to datacubes")
    if len(paths) != frames:
        raise PredictError(f"the model reads {frames} time step(s) per tile and {len(paths)} input(s) were given "
                           f"({', '.join(paths)}); give one raster or STAC item per time step (--input once each), "
                           "or a datacube" if frames > 1 else
                           f"the model reads one time step and {len(paths)} inputs were given ({', '.join(paths)}); "
                           "give one --input")
    scenes = [open_stac_scene(p, wanted, physical=physical) if Path(p).suffix.lower() == ".json"
              else open_raster_scene(p, wanted, names=names, physical=physical) for p in paths]
    if len(scenes) == 1:
        return scenes[0]
    return stack_frames(_in_time_order(scenes), " + ".join(paths))


def _is_cube(text: str) -> bool:
    return Path(text).is_dir() or text.rstrip("/").endswith(".zarr")


def _in_time_order(scenes: list[Scene]) -> list[Scene]:
    """``scenes`` sorted by acquisition time when each says it; as given when none does; refused when some do."""
    undated = [s.path for s in scenes if s.time is None]
    if len(undated) == len(scenes):
        return scenes
    if undated:
        raise PredictError(f"input {undated[0]} says no acquisition time and other inputs do (a tag that reads as "
                           "no date counts as none), so the frames' order is unclear; tag it (e.g. gdal_edit.py -mo "
                           "TIFFTAG_DATETIME='2021:06:01 10:30:00') or give only undated inputs, in time order")
    times = [s.time for s in scenes]
    twice = next((t for t in times if times.count(t) > 1), None)
    if twice is not None:
        same = [s.path for s in scenes if s.time == twice]
        raise PredictError(f"inputs {', '.join(same)} have the same acquisition time ({twice}); the frames must be "
                           "different time steps")
    return sorted(scenes, key=lambda s: s.time)  # type: ignore[arg-type, return-value]
