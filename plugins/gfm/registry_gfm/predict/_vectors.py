"""Class-map rasters to polygons, streamed by blocks: ``vectorize_file`` writes GeoPackage, GeoJSON, FlatGeobuf or
GeoParquet with one polygon per 4-connected region of one class (``class``, ``name``, ``pixels``, ``area_m2``, and
``probability`` from ``predict``), in the raster's CRS, through a staging file moved into place.

The regions come from :func:`registry_gfm.predict._regions.regions` (traced block by block, one polygon per region
whatever the block size, memory following the open regions' boundaries); here they become Arrow record batches,
filtered by ``--min-area``, and are written as they complete. ``--simplify`` simplifies all polygons as one coverage
at the end (shared edges stay shared), holding them in memory.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import Any, Final

import numpy as np

from registry_gfm.errors import PredictError
from registry_gfm.predict._regions import BlockReader, present, regions
from registry_gfm.predict._vector_writer import OUTPUT_TAG, VECTOR_KIND, write_file
from registry_gfm.predict._vector_writer import schema as feature_schema

__all__ = ["VECTOR_FORMATS", "ClassGrid", "VectorOptions", "VectorResult", "check_vector_output", "scored_grid",
           "vector_kind", "vectorize_file", "write_vectors"]

#: Output formats by suffix: (GDAL driver or "GeoParquet", what it is called in messages).
VECTOR_FORMATS: Final = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".fgb": "FlatGeobuf", ".parquet": "GeoParquet"}
#: Maps of at least this many pixels (1024^2) are written by a child process while the regions are traced:
#: starting one costs about 0.2 s (an interpreter with pyarrow and pyogrio), hidden behind tracing the first block;
#: smaller maps are written as fast here.
PIPED_PIXELS: Final = 1 << 20
#: GeoJSON keeps no metadata: its FeatureCollection ``description`` says it instead.
_GEOJSON_MARK = re.compile(r'"description":\s*"written by registry-core \(REGISTRY_CORE_OUTPUT=(\w+)\)"')


@dataclass(frozen=True)
class VectorResult:
    """What a vectorization wrote."""

    output: Path
    format: str
    features: int
    #: Regions left out for being smaller than ``min_area``.
    dropped: int
    seconds: float
    pixels: int

    def summary(self) -> str:
        return (f"wrote {self.output} ({self.format}, {self.features:,} polygon{'s' if self.features != 1 else ''}; "
                f"{self.dropped:,} below --min-area left out) in {self.seconds:.1f} s")


def vector_kind(path: Path) -> str | None:
    """The output kind a vector file is marked with (None: not one of ours, or not a vector file we read)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            value = (pq.read_metadata(path).metadata or {}).get(OUTPUT_TAG.encode())
            return value.decode() if value else None
        if suffix == ".geojson":
            with open(path, encoding="utf-8", errors="replace") as f:
                found = _GEOJSON_MARK.search(f.read(4096))
            return found.group(1) if found else None
        from pyogrio import read_info

        info = read_info(path)
        for where in ("dataset_metadata", "layer_metadata"):
            tag = (info.get(where) or {}).get(OUTPUT_TAG)
            if isinstance(tag, str):
                return tag
        return None
    except Exception:  # unreadable: not an output of ours
        return None


def check_vector_output(path: str | Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> tuple[Path, str]:
    """The output path (absolute) and format; PredictError for a format the installed drivers cannot write, a
    missing folder, an existing file without ``overwrite`` and, with it, anything but an earlier output of ours."""
    from registry_core.atomic import removal_problem

    out = Path(path).absolute()
    fmt = VECTOR_FORMATS.get(out.suffix.lower())
    writable = _writable()
    if fmt is None or fmt not in writable:
        offered = ", ".join(f"{s} ({f})" for s, f in VECTOR_FORMATS.items() if f in writable)
        raise PredictError(f"--output {path}: cannot write {out.suffix or '(no suffix)'!r} vectors; the installed "
                           f"drivers write {offered}")
    if not out.parent.is_dir():
        raise PredictError(f"--output {path}: folder {out.parent} does not exist")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise PredictError(f"--output {path} exists; pass --overwrite to replace it (it is left untouched)")
    problem = removal_problem(out, VECTOR_KIND, inputs=[Path(p) for p in inputs if "://" not in str(p)],
                              marked=vector_kind)
    if problem:
        raise PredictError(f"--output --overwrite refused: {problem}")
    return out, fmt


def _writable() -> set[str]:
    import pyogrio

    formats = set(pyogrio.list_drivers(write=True))
    try:
        import pyarrow.parquet  # noqa: F401

        formats.add("GeoParquet")
    except ImportError:
        pass
    return formats


@dataclass(frozen=True)
class VectorOptions:
    """How regions become features: the smallest kept (m²), holes dropped, coverage simplification (map units)."""

    min_area: float = 0.0
    fill_holes: bool = False
    simplify: float = 0.0
    block_size: int = 512

    def check(self) -> None:
        if self.min_area < 0:
            raise PredictError(f"--min-area must be >= 0 (square metres), got {self.min_area}")
        if self.simplify < 0:
            raise PredictError(f"--simplify must be >= 0 (map units), got {self.simplify}")
        if self.block_size < 1:
            raise PredictError(f"--block-size must be >= 1, got {self.block_size}")


@dataclass(frozen=True)
class ClassGrid:
    """A class map to polygonize: its blocks, size, georeference, nodata and class names."""

    read: BlockReader
    height: int
    width: int
    crs_wkt: str
    transform: Any
    nodata: int | None
    names: list[str] | None
    #: Whether ``read`` gives each pixel's class probability too (the features then carry their mean).
    scored: bool = False


def vectorize_file(source: str | Path, output: str | Path, *, min_area: float = 0.0, simplify: float = 0.0,
                   fill_holes: bool = False, block_size: int = 512, overwrite: bool = False,
                   class_names: list[str] | None = None) -> VectorResult:
    """Polygons of the class-map raster ``source`` into ``output`` (its suffix picks the format), in its CRS."""
    import rasterio
    from rasterio.windows import Window

    options = VectorOptions(min_area, fill_holes, simplify, block_size)
    options.check()
    out, fmt = check_vector_output(output, overwrite, inputs=[source])
    try:
        src = rasterio.open(source)
    except rasterio.errors.RasterioIOError:
        raise PredictError(f"input {source} is not a raster GDAL can read; expected a class map written by "
                           "predict") from None
    with src:
        if src.count != 1 or np.dtype(src.dtypes[0]).kind not in "iu":
            raise PredictError(f"input {source} is not a class map: expected one band of whole numbers, got "
                               f"{src.count} band(s) of {src.dtypes[0]}")
        if src.crs is None:
            raise PredictError(f"input {source} has no CRS; polygons need the class map's coordinate system")

        def read(x0: int, y0: int, w: int, h: int) -> tuple[np.ndarray, None]:
            return src.read(1, window=Window(x0, y0, w, h)), None

        grid = ClassGrid(read, src.height, src.width, src.crs.to_wkt(), src.transform,
                         None if src.nodata is None else int(src.nodata),
                         class_names if class_names is not None else _class_names(src))
        return write_vectors(grid, out, fmt, options, overwrite=overwrite, inputs=[source])


def scored_grid(store: str | Path, class_names: list[str] | None = None) -> ClassGrid:
    """The class map in the staging store of :func:`~registry_gfm.predict.predict_to_vectors` (bands: each pixel's
    class and that class's probability, NaN where the input was not valid): classes, 255 where not valid."""
    import zarr
    from affine import Affine

    from registry_gfm.predict._engine import CLASS_NODATA

    group = zarr.open_group(str(store), mode="r")
    image: Any = group["image"]
    attrs: dict[str, Any] = dict(group.attrs)
    _, _, height, width = image.shape

    def read(x0: int, y0: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        scored = np.asarray(image[0, :, y0 : y0 + h, x0 : x0 + w])
        invalid = np.isnan(scored[0])
        classes = np.where(invalid, CLASS_NODATA, scored[0]).astype(np.uint8)
        return classes, np.where(invalid, np.float32(0), scored[1])

    names = class_names if class_names is not None else attrs.get("classes")
    return ClassGrid(read, int(height), int(width), str(attrs["crs_wkt"]), Affine(*attrs["transform"][:6]),
                     CLASS_NODATA, [str(n) for n in names] if names else None, scored=True)


def write_vectors(grid: ClassGrid, out: Path, fmt: str, options: VectorOptions, *, overwrite: bool = False,
                  inputs: Iterable[str | Path] = ()) -> VectorResult:
    """The polygons of ``grid`` into ``out`` (checked by :func:`check_vector_output`), through a staging file,
    written by :func:`write_features`."""
    from pyproj import CRS

    from registry_core import OutputPathError
    from registry_core.atomic import replace_dir, writer_lock
    from registry_gfm.predict._sinks import staging

    started = time.perf_counter()
    crs = CRS.from_user_input(grid.crs_wkt)
    scored = grid.scored
    counts = {"written": 0, "dropped": 0}
    batches = _record_batches(grid, crs, options, scored, counts)
    texts = (crs.to_wkt(), crs.to_json())
    with writer_lock(out, "--output"), staging(out, "tmp") as folder, _writing(out):
        folder.mkdir()
        tmp = folder / out.name  # the final name: drivers check its extension
        layer = re.sub(r"\W", "_", out.stem) or "polygons"
        write_features(tmp, fmt, texts, scored, batches, layer, grid.height * grid.width)
        if (out.exists() or out.is_symlink()) and not overwrite:
            raise PredictError(f"--output {out} appeared while vectorizing; pass --overwrite to replace it")
        try:
            replace_dir(tmp, out, kind=VECTOR_KIND, inputs=[Path(p) for p in inputs if "://" not in str(p)],
                        marked=vector_kind)
        except OutputPathError as exc:
            raise PredictError(f"--output --overwrite refused: {exc}") from None
    return VectorResult(out, fmt, counts["written"], counts["dropped"], time.perf_counter() - started,
                        grid.height * grid.width)


def _record_batches(grid: ClassGrid, crs: Any, options: VectorOptions, scored: bool,
                    counts: dict[str, int]) -> Iterator[Any]:
    """The features as Arrow record batches (WKB geometries in map coordinates), as the regions complete; with
    ``simplify``, one batch at the end (the coverage is simplified as a whole)."""
    import pyarrow as pa
    import shapely

    transform = grid.transform
    pixel_area, area_of = _area(crs, transform)
    held: list[tuple[Any, ...]] = []
    schema = feature_schema(scored)

    def batch(values: np.ndarray, pixels: np.ndarray, mean: np.ndarray, area: np.ndarray, geometry: Any) -> Any:
        columns = [pa.array(values, pa.int32()), _names(values, grid.names), pa.array(pixels, pa.int64()),
                   pa.array(np.round(area, 6), pa.float64()),
                   *([pa.array(np.round(mean, 6), pa.float64())] if scored else []), geometry]
        counts["written"] += len(values)
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    for values, pixels, mean, geometry in regions(grid.read, grid.height, grid.width, options.block_size,
                                                   grid.nodata, transform, options.fill_holes):
        area = pixel_area * pixels if pixel_area is not None else np.array(
            [area_of(g) for g in shapely.from_wkb(geometry.to_numpy(zero_copy_only=False))])
        keep = area >= options.min_area
        counts["dropped"] += int((~keep).sum())
        if not keep.any():
            continue
        parts = (values, pixels, mean, area, geometry) if keep.all() else (
            values[keep], pixels[keep], mean[keep], area[keep], geometry.filter(pa.array(keep)))
        if options.simplify > 0:
            held.append(parts)
        else:
            yield batch(*parts)
    if held:
        values, pixels, mean, area = (np.concatenate([part[i] for part in held]) for i in range(4))
        polygons = shapely.from_wkb(pa.concat_arrays([part[4] for part in held]).to_numpy(zero_copy_only=False))
        yield batch(values, pixels, mean, area,
                    pa.array(shapely.to_wkb(shapely.coverage_simplify(polygons, options.simplify)), pa.binary()))


def _names(values: np.ndarray, names: list[str] | None) -> Any:
    """Each region's class name (its class value as text where ``names`` has none) as an Arrow string array, taken
    from the names of the classes present: no Python string per region."""
    import pyarrow as pa

    classes = present(values)
    text = [names[v] if names is not None and 0 <= v < len(names) else str(v) for v in classes.tolist()]
    return pa.array(text, pa.string()).take(pa.array(np.searchsorted(classes, values).astype(np.int32)))


def write_features(path: Path, fmt: str, crs: tuple[str, str], scored: bool, batches: Iterator[Any], layer: str,
                   pixels: int) -> None:
    """:func:`write_file` for a map of ``pixels``: by a child process (:func:`_write_piped`, its error log beside
    ``path``) from PIPED_PIXELS, else here."""
    if pixels >= PIPED_PIXELS:
        _write_piped(path, fmt, crs, scored, batches, layer, path.parent / "writer.log")
    else:
        write_file(path, fmt, crs, scored, batches, layer)


def _write_piped(path: Path, fmt: str, crs: tuple[str, str], scored: bool, batches: Iterator[Any], layer: str,
                 log: Path) -> None:
    """:func:`write_file` in a child process (:mod:`~registry_gfm.predict._vector_writer` run by path) fed the batches
    through a pipe (Arrow IPC), so GDAL writes on another core while the next regions are traced (its writing holds
    this interpreter's GIL); the child's start (about 0.2 s) passes while the first block is traced. Its error, if it
    fails, is its last line in ``log`` (raised as an OSError); it is stopped if this side stops first."""
    import subprocess
    import sys

    import pyarrow as pa

    from registry_gfm.predict import _vector_writer

    header = {b"path": str(path).encode(), b"format": fmt.encode(), b"layer": layer.encode(),
              b"crs": crs[0].encode(), b"projjson": crs[1].encode()}
    schema = feature_schema(scored).with_metadata(header)
    # by path, not -m: the package's imports stay out of the child; -P keeps the file's folder off sys.path
    with open(log, "wb") as errors:
        child = subprocess.Popen([sys.executable, "-P", _vector_writer.__file__], stdin=subprocess.PIPE,
                                 stderr=errors)
    pipe = child.stdin
    assert pipe is not None
    # a thread feeds the pipe: the child takes a batch only once GDAL has written the one before, and this side
    # traces the next regions meanwhile instead of waiting in the write
    queue: Queue[Any] = Queue(maxsize=2)

    def feed() -> None:
        done = False
        try:
            with pipe, pa.ipc.new_stream(pipe, schema) as stream:
                while (batch := queue.get()) is not None:
                    stream.write_batch(batch)
                    pipe.flush()
                done = True
        except OSError:
            pass  # the pipe broke: the child stopped, and its exit status and message say why
        finally:
            while not done:  # take what is still put, so the producer never waits on a dead pipe
                done = queue.get() is None

    feeder = threading.Thread(target=feed, name="vector-writer-feed", daemon=True)
    feeder.start()
    try:
        for batch in batches:
            if child.poll() is not None:
                break
            queue.put(batch)
    except BaseException:
        child.kill()  # an error or interrupt here: the child's partial file goes with the staging
        raise
    finally:
        queue.put(None)
        feeder.join()
        status = child.wait()
    if status != 0:
        lines = log.read_text(errors="replace").strip().splitlines()
        raise OSError(lines[-1] if lines else f"the writer process exited with status {status}")


@contextmanager
def _writing(out: Path) -> Iterator[None]:
    """A failed write (a full or read-only disk) as one PredictError naming the output; the staging file goes."""
    from pyogrio.errors import DataLayerError, DataSourceError, FieldError, GeometryError

    try:
        yield
    except (OSError, DataSourceError, DataLayerError, FieldError, GeometryError) as exc:
        raise PredictError(f"--output {out}: could not write it: {exc}") from None


def _class_names(src: Any) -> list[str] | None:
    text = src.tags().get("classes")
    try:
        names = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    return [str(n) for n in names] if isinstance(names, list) else None


def _area(crs: Any, transform: Any) -> tuple[float | None, Callable[[Any], float]]:
    """(square metres per pixel in a projected CRS, else None; a polygon's geodesic area for a geographic one)."""
    if crs.is_geographic:
        geod = crs.get_geod()
        return None, lambda geometry: abs(geod.geometry_area_perimeter(geometry)[0])
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return abs(transform.a * transform.e - transform.b * transform.d) * unit * unit, lambda geometry: 0.0
