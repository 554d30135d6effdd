"""Class-map rasters to polygons, streamed by blocks: ``vectorize_file`` writes GeoPackage, GeoJSON, FlatGeobuf or
GeoParquet with one polygon per 4-connected region of one class (``class``, ``name``, ``pixels``, ``area_m2``).

Regions are labelled block by block (``scipy.ndimage.label``) and joined across block edges with a union-find, so a
region that crosses blocks comes out as one polygon, identical for every block size: pieces are traced in pixel
coordinates (integers, exact), unioned, stripped of the vertices block seams leave, normalised, and only then mapped
through the raster's transform. A region is written as soon as the block row below it cannot reach it, so memory
follows the open regions, not the scene. ``--simplify`` simplifies all polygons as one coverage at the end (shared
edges stay shared), holding them in memory.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from registry_gfm.errors import PredictError

__all__ = ["VECTOR_FORMATS", "ClassGrid", "VectorOptions", "VectorResult", "check_vector_output", "probability_grid",
           "vector_kind", "vectorize_file", "write_vectors"]

#: Output formats by suffix: (GDAL driver or "GeoParquet", what it is called in messages).
VECTOR_FORMATS: Final = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".fgb": "FlatGeobuf", ".parquet": "GeoParquet"}
#: The output kind a vector file is marked with (as predict's rasters): what ``--overwrite`` may replace.
VECTOR_KIND: Final = "predict"
#: The tag (GPKG, FlatGeobuf metadata; GeoParquet key-value metadata) holding the output kind.
OUTPUT_TAG: Final = "REGISTRY_CORE_OUTPUT"
#: GeoJSON keeps no metadata: its FeatureCollection ``description`` says it instead.
_GEOJSON_MARK = re.compile(r'"description":\s*"written by registry-core \(REGISTRY_CORE_OUTPUT=(\w+)\)"')
#: Features per GeoParquet row group.
_PARQUET_ROWS: Final = 10_000


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
        import fiona

        with fiona.open(path) as src:
            tag = src.tags().get(OUTPUT_TAG)
        return tag if isinstance(tag, str) else None
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
    import fiona

    formats = {name for name, modes in fiona.supported_drivers.items() if "w" in modes}
    try:
        import pyarrow.parquet  # noqa: F401

        formats.add("GeoParquet")
    except ImportError:
        pass
    return formats


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, a: int) -> int:
        root = a
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while a != root:  # path compression
            self.parent[a], a = root, self.parent.get(a, a)
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class _Region:
    value: int
    pixels: int
    pieces: list[Any]
    #: Sum of the chosen class's probability over the region, in units of 2^-24 (whole numbers: exact in any order).
    score: int = 0


#: Probabilities are summed as whole multiples of 2^-24: a block's sums stay below 2^53 (exact in float64), so the
#: mean probability of a region is the same whatever blocks it was read in.
_SCORE_UNIT: Final = float(1 << 24)

#: ``read(x0, y0, width, height)`` -> (class values, the chosen class's probability or None) of one block.
BlockReader = Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray | None]]


def _canonical(geometry: Any) -> Any:
    """The same polygon whatever blocks it was traced in: seam vertices removed, rings in a fixed order and start."""
    import shapely

    return shapely.normalize(shapely.simplify(shapely.normalize(geometry), 0.0))


def _regions(read: BlockReader, height: int, width: int, block: int,
             nodata: int | None) -> Iterator[tuple[int, int, float | None, Any]]:
    """(class value, pixels, mean probability or None, polygon in pixel coordinates) of every 4-connected region, a
    region as soon as no later block can reach it."""
    import rasterio.features
    import shapely
    from scipy import ndimage
    from shapely.geometry import shape

    scored = False
    uf = _UnionFind()
    regions: dict[int, _Region] = {}
    next_id = 1
    above: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # column block -> (values, labels) of the row above's last row
    for y0 in range(0, height, block):
        left: tuple[np.ndarray, np.ndarray] | None = None
        bottoms: list[np.ndarray] = []
        for x0 in range(0, width, block):
            values, confidence = read(x0, y0, min(block, width - x0), min(block, height - y0))
            local = np.zeros(values.shape, np.int32)
            count = 0
            for value in np.unique(values):
                if nodata is not None and value == nodata:
                    continue
                labelled, found = ndimage.label(values == value)
                local[labelled > 0] = labelled[labelled > 0] + count
                for k in range(count + 1, count + found + 1):
                    regions[next_id + k - 1] = _Region(int(value), 0, [])
                count += found
            if count == 0:
                labels = np.zeros(values.shape, np.int64)
            else:
                labels = np.where(local > 0, local.astype(np.int64) + next_id - 1, 0)
                pixels = np.bincount(local.ravel(), minlength=count + 1)
                scores = None
                if confidence is not None:
                    scored = True
                    units = np.round(np.nan_to_num(confidence, nan=0.0).astype(np.float64) * _SCORE_UNIT)
                    scores = np.bincount(local.ravel(), weights=units.ravel(), minlength=count + 1)
                for k in range(1, count + 1):
                    regions[next_id + k - 1].pixels = int(pixels[k])
                    if scores is not None:
                        regions[next_id + k - 1].score = int(scores[k])
                for geometry, k in rasterio.features.shapes(local, mask=local > 0, connectivity=4):
                    piece = shapely.transform(shape(geometry), lambda xy, o=(x0, y0): xy + o)  # pixels: exact
                    regions[next_id + int(k) - 1].pieces.append(piece)
            next_id += count
            if left is not None:  # the block to the left: its last column against this first one
                _join(uf, *left, values[:, 0], labels[:, 0])
            if x0 in above:  # the block above: its last row against this first one
                _join(uf, *above[x0], values[0, :], labels[0, :])
            left = (values[:, -1], labels[:, -1])
            above[x0] = (values[-1, :], labels[-1, :])
            bottoms.append(labels[-1, :])
        still_open = {uf.find(int(a)) for a in np.unique(np.concatenate(bottoms)) if a > 0}
        if y0 + block >= height:
            still_open = set()
        groups: dict[int, list[int]] = {}
        for label in regions:
            groups.setdefault(uf.find(label), []).append(label)
        for root, members in sorted(groups.items()):
            if root in still_open:
                continue
            parts = [regions.pop(m) for m in members]
            pieces = [p for r in parts for p in r.pieces]
            geometry = pieces[0] if len(pieces) == 1 else shapely.union_all(pieces)
            pixels_total = sum(r.pixels for r in parts)
            mean = sum(r.score for r in parts) / _SCORE_UNIT / pixels_total if scored else None
            yield parts[0].value, pixels_total, mean, _canonical(geometry)


def _join(uf: _UnionFind, values_a: np.ndarray, labels_a: np.ndarray, values_b: np.ndarray,
          labels_b: np.ndarray) -> None:
    """Union the regions that touch across a block edge (neighbouring pixels of one class)."""
    joined = (labels_a > 0) & (labels_b > 0) & (values_a == values_b)
    for a, b in set(zip(labels_a[joined].tolist(), labels_b[joined].tolist(), strict=True)):
        uf.union(a, b)


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


def probability_grid(store: str | Path, class_names: list[str] | None = None) -> ClassGrid:
    """The class map of a Zarr store of blended per-class probabilities (predict's layout): each pixel's most probable
    class (as predict's class map has it) and that class's probability, 255 where the input was not valid."""
    import zarr
    from affine import Affine

    from registry_gfm.predict._engine import CLASS_NODATA

    group = zarr.open_group(str(store), mode="r")
    image: Any = group["image"]
    attrs: dict[str, Any] = dict(group.attrs)
    _, _, height, width = image.shape

    def read(x0: int, y0: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        probs = np.asarray(image[0, :, y0 : y0 + h, x0 : x0 + w])
        invalid = np.isnan(probs).any(axis=0)
        filled = np.nan_to_num(probs, nan=-np.inf)
        classes = np.argmax(filled, axis=0).astype(np.uint8)
        classes[invalid] = CLASS_NODATA
        chosen = np.take_along_axis(filled, classes[None].astype(np.intp) % probs.shape[0], axis=0)[0]
        return classes, np.where(invalid, 0.0, chosen).astype(np.float32)

    names = class_names if class_names is not None else attrs.get("classes")
    return ClassGrid(read, int(height), int(width), str(attrs["crs_wkt"]), Affine(*attrs["transform"][:6]),
                     CLASS_NODATA, [str(n) for n in names] if names else None)


def write_vectors(grid: ClassGrid, out: Path, fmt: str, options: VectorOptions, *, overwrite: bool = False,
                  inputs: Iterable[str | Path] = ()) -> VectorResult:
    """The polygons of ``grid`` into ``out`` (checked by :func:`check_vector_output`), through a staging file."""
    import shapely
    from pyproj import CRS

    from registry_core import OutputPathError
    from registry_core.atomic import replace_dir, writer_lock
    from registry_gfm.predict._sinks import staging

    started = time.perf_counter()
    crs = CRS.from_user_input(grid.crs_wkt)
    transform = grid.transform
    pixel_area, area_of = _area(crs, transform)
    records: list[tuple[dict[str, Any], Any]] = []
    dropped = written = 0
    with writer_lock(out, "--output"), staging(out, "tmp") as tmp, _writing(out):
        sink: Any = None
        try:
            for value, pixels, probability, polygon in _regions(grid.read, grid.height, grid.width,
                                                                options.block_size, grid.nodata):
                if sink is None:
                    sink = _sink(fmt, tmp, crs, out, probability is not None)
                if options.fill_holes and polygon.interiors:
                    polygon = shapely.Polygon(polygon.exterior)
                geometry = shapely.transform(polygon, lambda xy: _to_map(xy, transform))
                area = pixel_area * pixels if pixel_area is not None else area_of(geometry)
                if area < options.min_area:
                    dropped += 1
                    continue
                record = _record(value, pixels, area, probability, grid.names)
                if options.simplify > 0:
                    records.append((record, geometry))
                    continue
                sink.write(record, geometry)
                written += 1
            if sink is None:  # no region at all: an empty layer
                sink = _sink(fmt, tmp, crs, out, False)
            if records:
                simple = shapely.coverage_simplify([g for _, g in records], options.simplify)
                for (record, _), geometry in zip(records, simple, strict=True):
                    sink.write(record, geometry)
                    written += 1
        finally:
            if sink is not None:
                sink.close()
        if (out.exists() or out.is_symlink()) and not overwrite:
            raise PredictError(f"--output {out} appeared while vectorizing; pass --overwrite to replace it")
        try:
            replace_dir(tmp, out, kind=VECTOR_KIND, inputs=[Path(p) for p in inputs if "://" not in str(p)],
                        marked=vector_kind)
        except OutputPathError as exc:
            raise PredictError(f"--output --overwrite refused: {exc}") from None
    return VectorResult(out, fmt, written, dropped, time.perf_counter() - started, grid.height * grid.width)


@contextmanager
def _writing(out: Path) -> Iterator[None]:
    """A failed write (a full or read-only disk) as one PredictError naming the output; the staging file goes."""
    from fiona.errors import FionaError

    try:
        yield
    except (OSError, FionaError) as exc:
        raise PredictError(f"--output {out}: could not write it: {exc}") from None


def _class_names(src: Any) -> list[str] | None:
    text = src.tags().get("classes")
    try:
        names = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    return [str(n) for n in names] if isinstance(names, list) else None


def _to_map(xy: np.ndarray, transform: Any) -> np.ndarray:
    a, b, c, d, e, f = transform[:6]
    x, y = xy[:, 0], xy[:, 1]
    return np.stack([c + a * x + b * y, f + d * x + e * y], axis=1)


def _area(crs: Any, transform: Any) -> tuple[float | None, Callable[[Any], float]]:
    """(square metres per pixel in a projected CRS, else None; a polygon's geodesic area for a geographic one)."""
    if crs.is_geographic:
        geod = crs.get_geod()
        return None, lambda geometry: abs(geod.geometry_area_perimeter(geometry)[0])
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return abs(transform.a * transform.e - transform.b * transform.d) * unit * unit, lambda geometry: 0.0


def _record(value: int, pixels: int, area: float, probability: float | None,
            names: list[str] | None) -> dict[str, Any]:
    name = names[value] if names is not None and 0 <= value < len(names) else str(value)
    record: dict[str, Any] = {"class": value, "name": name, "pixels": pixels, "area_m2": round(area, 6)}
    if probability is not None:
        record["probability"] = round(probability, 6)
    return record


class _FionaSink:
    def __init__(self, driver: str, path: Path, crs: Any, layer: str, scored: bool) -> None:
        import fiona

        properties = {"class": "int", "name": "str", "pixels": "int", "area_m2": "float",
                      **({"probability": "float"} if scored else {})}
        schema = {"geometry": "Polygon", "properties": properties}
        options = ({"DESCRIPTION": f"written by registry-core ({OUTPUT_TAG}={VECTOR_KIND})"}
                   if driver == "GeoJSON" else {})
        self.dst = fiona.open(path, "w", driver=driver, schema=schema, crs=crs.to_wkt(), layer=layer,
                              **options)
        if driver != "GeoJSON":
            self.dst.update_tags({OUTPUT_TAG: VECTOR_KIND})

    def write(self, record: dict[str, Any], geometry: Any) -> None:
        from shapely.geometry import mapping

        self.dst.write({"geometry": mapping(geometry), "properties": record})

    def close(self) -> None:
        self.dst.close()


class _ParquetSink:
    """GeoParquet 1.1: WKB geometries, the CRS as PROJJSON, row groups of :data:`_PARQUET_ROWS` features."""

    def __init__(self, path: Path, crs: Any, scored: bool) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        geo = {"version": "1.1.0", "primary_column": "geometry",
               "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"], "crs": crs.to_json_dict()}}}
        fields = [("class", pa.int32()), ("name", pa.string()), ("pixels", pa.int64()), ("area_m2", pa.float64()),
                  *([("probability", pa.float64())] if scored else []), ("geometry", pa.binary())]
        self.schema = pa.schema(fields,
                                metadata={b"geo": json.dumps(geo).encode(), OUTPUT_TAG.encode(): VECTOR_KIND.encode()})
        self.writer = pq.ParquetWriter(path, self.schema)
        self.rows: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any], geometry: Any) -> None:
        self.rows.append({**record, "geometry": geometry.wkb})
        if len(self.rows) >= _PARQUET_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


def _sink(fmt: str, path: Path, crs: Any, out: Path, scored: bool) -> Any:
    """The writer of ``fmt`` into the staging ``path`` (with a ``probability`` field when ``scored``); the layer is
    named after the final output ``out``."""
    if fmt == "GeoParquet":
        return _ParquetSink(path, crs, scored)
    return _FionaSink(fmt, path, crs, re.sub(r"\W", "_", out.stem) or "polygons", scored)
