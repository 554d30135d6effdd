"""The light manifest of this folder's components: config schemas and specs (no heavy imports)."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from registry_core import ComponentSpec, KindSpec, option

# --- dask schedulers of ingest and predict, checked before any dask import -------------------------------------

#: Most worker processes a ``local:N`` cluster may start (each one a Python process with its own GDAL cache).
MAX_LOCAL_WORKERS: Final = 256


def scheduler_problem(spec: str) -> str | None:
    """None when ``spec`` names a scheduler, else what is wrong with it (the caller adds where it came from)."""
    if spec in ("threads", "synchronous") or "://" in spec:
        return None
    match = re.fullmatch(r"local:([+-]?\d+)", spec)
    if match is None:
        return (f"{spec!r} is unknown; expected threads, synchronous, local:N (N worker processes) or a scheduler "
                "address such as tcp://host:8786")
    n = int(match.group(1))
    if not 1 <= n <= MAX_LOCAL_WORKERS:
        return f"{spec!r} asks for {n} worker processes; expected local:N with 1 <= N <= {MAX_LOCAL_WORKERS}"
    return None


# --- checks of stac-zarr's search options (shared with the search and the plan, which import heavier modules) --

_EPSG = re.compile(r"^\s*(?:EPSG:)?(\d{4,6})\s*$", re.IGNORECASE)
#: GeoJSON geometry types whose ``coordinates`` the search reads.
GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")


def epsg_code(value: str | int) -> int:
    """``"EPSG:32633"``, ``"32633"`` or ``32633`` -> 32633; anything else is a ValueError naming option 'crs'."""
    match = _EPSG.match(str(value))
    if not match:
        raise ValueError(f"option 'crs' {value!r} is not an EPSG code; expected e.g. 'EPSG:32633'")
    return int(match.group(1))


def _check_lon_lat(lon: float, lat: float, what: str) -> None:
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError(f"{what} holds a non-finite coordinate ({lon}, {lat})")
    if not -90 <= lat <= 90:
        raise ValueError(f"{what} has latitude {lat}, outside [-90, 90]; expected lon/lat degrees")
    if not -180 <= lon <= 180:
        raise ValueError(f"{what} has longitude {lon}, outside [-180, 180]; expected lon/lat degrees")


def check_bbox(bbox: Sequence[float]) -> None:
    """[west, south, east, north] in lon/lat degrees, west < east and south < north."""
    if len(bbox) != 4:
        raise ValueError(f"option 'bbox' needs 4 numbers [west, south, east, north], got {list(bbox)}")
    west, south, east, north = (float(v) for v in bbox)
    _check_lon_lat(west, south, "option 'bbox'")
    _check_lon_lat(east, north, "option 'bbox'")
    if not (west < east and south < north):
        raise ValueError(f"option 'bbox' {list(bbox)} is empty or inverted; expected [west, south, east, north] with "
                         "west < east and south < north (boxes across the antimeridian are not supported)")


def check_geometry(geom: Any) -> None:
    """A GeoJSON geometry of lon/lat positions that the search can read."""
    kind = geom.get("type") if isinstance(geom, dict) else None
    if kind not in GEOMETRY_TYPES or "coordinates" not in geom:
        raise ValueError(f"option 'intersects' is not a GeoJSON geometry; expected a table with 'type' (one of "
                         f"{', '.join(GEOMETRY_TYPES)}) and 'coordinates', got {geom!r}"[:400])
    positions = 0

    def walk(c: Any) -> None:
        nonlocal positions
        if isinstance(c, (list, tuple)) and len(c) >= 2 and all(isinstance(v, (int, float)) for v in c):
            _check_lon_lat(float(c[0]), float(c[1]), "option 'intersects'")
            positions += 1
        elif isinstance(c, (list, tuple)):
            for sub in c:
                walk(sub)
        else:
            raise ValueError(f"option 'intersects' has coordinate {c!r}; expected [lon, lat] positions")

    walk(geom["coordinates"])
    if not positions:
        raise ValueError(f"option 'intersects' {kind} has no coordinates")


def parse_time(text: str, end: bool) -> dt.datetime | None:
    """An RFC 3339 instant or date (a bare date covers its whole day: ``end`` picks its last instant); ``..`` open."""
    if text in ("", ".."):
        return None
    if len(text) == 10:  # a bare date covers the whole day
        day = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        return day + dt.timedelta(days=1) - dt.timedelta(microseconds=1) if end else day
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def check_interval(interval: str) -> None:
    """An RFC 3339 instant or ``start/end`` interval (``..`` for an open end), start not after end."""
    start_s, slash, end_s = interval.partition("/")
    try:
        start = parse_time(start_s, end=False)
        end = parse_time(end_s if slash else start_s, end=True)
    except ValueError:
        raise ValueError(f"option 'datetime' {interval!r} is not an RFC 3339 instant or interval; expected e.g. "
                         "'2020-06-01', '2020-01-01T10:00:00Z' or '2020-01-01/2020-12-31' ('..' for an open end)") from None
    if slash and start is None and end is None:
        raise ValueError(f"option 'datetime' {interval!r} is open at both ends; give a start or an end")
    if start is not None and end is not None and start > end:
        raise ValueError(f"option 'datetime' {interval!r} starts after it ends; expected 'start/end'")


# --- stac-zarr: STAC search -> stackstac / odc-stac -> cloud mask -> Zarr datacube ---------------------------

#: Cloud masks ``stac-zarr`` knows (registry_gfm.data.cloud_mask.MASKS).
CLOUD_MASKS = ("none", "scl", "qa_pixel", "fmask")
#: What ``zarr-chips`` labels are for.
TASKS = ("segmentation", "classification")
RESAMPLINGS = ("nearest", "bilinear", "cubic", "average", "mode", "min", "max", "med")


@dataclass(kw_only=True)
class StacZarrConfig:
    """Options of ``stac-zarr``: what to search for, how to load and mask it, where to write the datacube."""

    catalog: str = option(help="STAC API URL (http://host/...) or path / URL of a static catalog.json")
    collections: list[str] = option([], help="STAC collection ids to search (empty: all)")
    bbox: list[float] | None = option(None, help="area as [west, south, east, north] in lon/lat degrees (None: "
                                      "the union of the items found)")
    intersects: dict[str, Any] | None = option(None, help="GeoJSON geometry the items must intersect (instead of bbox)")
    datetime: str | None = option(None, help="RFC 3339 instant or interval, e.g. '2020-01-01/2020-12-31' ('..' open)")
    query: dict[str, Any] = option({}, help="STAC query extension, e.g. {'eo:cloud_cover': {'lt': 20}}; applied by the "
                                   "server when it supports it and always re-checked locally")
    filter: dict[str, Any] = option({}, help="CQL2-JSON filter, e.g. {'op': '<', 'args': [{'property': "
                                    "'eo:cloud_cover'}, 20]}; server-side when supported, always re-checked locally")
    sortby: str | None = option(None, help="property deciding which items max_items keeps ('-' prefix: descending); "
                                "the datacube is always in time order")
    max_items: int | None = option(None, help="keep at most this many items (None: all)", min=1)
    assets: list[str] = option(help="bands in order, each an asset key or eo:bands name / common name ('red', "
                               "'nir08', 'B04'); this order is the data source's `bands` port")
    resolution: float | None = option(None, help="pixel size in units of `crs` (None: the items' native resolution)",
                                      min=0)
    crs: str | None = option(None, help="target CRS as 'EPSG:code' (None: the items' common native CRS; items in "
                             "mixed CRSs then are an error)")
    resampling: str = option("nearest", help="resampling used when reprojecting or changing resolution",
                             choices=RESAMPLINGS)
    chunk_size: int = option(512, help="spatial chunk (pixels) of the store; pick a multiple of the chip size, "
                             "so a chip read touches few chunks", min=16, max=8192)
    cloud_mask: str = option("none", help="QA product to mask clouds with: scl (Sentinel-2 L2A classes), qa_pixel "
                             "(Landsat C2 bits), fmask (HLS bits), or none", choices=CLOUD_MASKS)
    mask_asset: str | None = option(None, help="asset key of the QA raster (None: the usual key: scl, qa_pixel, "
                                    "Fmask)")
    mask_values: list[int] | None = option(None, help="classes (scl) or bit positions (qa_pixel, fmask) to mask "
                                           "(None: clouds, cloud shadow, cirrus, fill)")
    empty_scenes: str = option("error", help="a scene with no clear pixel after masking: 'error' (names the item) "
                               "or 'drop' it with a warning", choices=("error", "drop"))
    loader: str = option("stackstac", help="the stac_loader component that turns STAC items into a dask array: "
                         "stackstac, odc-stac, or one another plugin registers (`list stac_loader`)")
    store: str = option("datacube.zarr", help="path of the Zarr v3 datacube to write (resumed if it exists)")
    scheduler: str = option("threads", help="dask scheduler: 'threads', 'synchronous', 'local:N' (a LocalCluster "
                            "of N worker processes) or a scheduler address such as 'tcp://host:8786'")
    retries: int = option(4, help="retries of a failed STAC API request (with exponential backoff)", min=0, max=20)
    timeout: float = option(30.0, help="seconds to wait for each STAC API connection and response before a retry",
                            min=0.01, max=3600)

    def __post_init__(self) -> None:
        if self.bbox is not None:
            check_bbox(self.bbox)
        if self.bbox is not None and self.intersects is not None:
            raise ValueError("options 'bbox' and 'intersects' exclude each other; give one area to search")
        if self.intersects is not None:
            check_geometry(self.intersects)
        if self.datetime is not None:
            check_interval(self.datetime)
        if self.crs is not None:
            epsg_code(self.crs)
        if not self.assets:
            raise ValueError("option 'assets' is empty; list the bands to ingest (asset keys or common names)")
        if self.resolution is not None and self.resolution <= 0:
            raise ValueError(f"option 'resolution' must be > 0 (pixel size in units of `crs`), got {self.resolution}")
        problem = scheduler_problem(self.scheduler)
        if problem is not None:
            raise ValueError(f"option 'scheduler' {problem}")
        from registry_core import current_registry  # the validating registry: no loader is imported here

        try:
            current_registry().get("stac_loader", self.loader)
        except LookupError as exc:
            raise ValueError(f"option 'loader': {exc}") from None

    @property
    def bands(self) -> tuple[str, ...]:
        """The ``bands`` port: the ordered band names, as given in ``assets``."""
        return tuple(self.assets)


# --- zarr-chips: (frames, bands, chip, chip) training samples from a Zarr datacube ------------------------------


@dataclass
class ZarrChipsConfig:
    """Options of ``zarr-chips``: which store, chip shape, bands, sampling, validity threshold, normalisation."""

    store: str = option("datacube.zarr", help="path of a complete Zarr datacube written by stac-zarr")
    chip_size: int = option(64, help="chip height and width in pixels", min=1, max=8192)
    frames: int = option(1, help="consecutive time steps per chip (the `frames` port)", min=1)
    bands: list[str] | None = option(None, help="bands in order, by store name, common name or catalog alias ('B8A', "
                                     "'nir08'); None: every store band in store order (the `bands` port)")
    sampling: str = option("grid", help="'grid': every whole chip on a chip-size grid; 'random': windows drawn "
                           "anywhere, deterministically by (seed, index)", choices=("grid", "random"))
    samples_per_epoch: int = option(1024, help="chips in the train split with random sampling (val: this times "
                                    "val_fraction)", min=1)
    min_valid: float = option(0.5, help="skip chips whose fraction of usable pixels (over all frames) is below this",
                              min=0.0, max=1.0)
    mean: list[float] | None = option(None, help="per-band mean to normalise with, in the units of the pixels "
                                      "(None: computed from the store in one pass and saved as <store>.stats.json)")
    std: list[float] | None = option(None, help="per-band standard deviation to normalise with (None: computed, "
                                     "with mean)")
    apply_scale: bool = option(True, help="turn stored numbers into physical values (dn * scale + offset, from the "
                               "store) before normalising; false normalises raw numbers")
    seed: int = option(0, help="seed of random sampling: chip i of a split depends only on (seed, split, i)")
    val_fraction: float = option(0.1, help="share of chip rows at the bottom (south) of the scene held out as the "
                                 "val split; 0: no val split", min=0.0, max=0.9)
    cache_mb: int = option(256, help="decoded-chunk cache per process (each DataLoader worker has its own), in "
                           "MiB; neighbouring chips share chunks; 0 turns it off", min=0)
    labels: str | None = option(None, help="land-cover labels: a single-band GeoTIFF / COG in any CRS (reprojected "
                                "with nearest resampling onto the datacube grid once, cached as "
                                "<store>.labels-<key>.npy) or 'store:NAME', a (y, x) variable of the store; None: "
                                "unlabelled chips")
    task: str | None = option(None, help="with labels: 'segmentation' (a label chip aligned pixel for pixel with "
                              "the image chip) or 'classification' (one label per chip, by label_rule); None: "
                              "segmentation when labels are set (the `task` port)", choices=TASKS)
    num_classes: int | None = option(None, help="classes of the labels (the `num_classes` port); needed with labels",
                                     min=1, max=65535)
    label_values: list[int] | None = option(None, help="raster value of each class in class order, e.g. [1, 2, 3] "
                                            "makes raster value 1 class 0; None: raster values are class indices")
    class_names: list[str] | None = option(None, help="a name per class, for metrics and reports (the "
                                           "`class_names` port); None: 'class 0', 'class 1', ...")
    ignore_index: int = option(255, help="label of pixels without a class (the raster's nodata, outside the raster, "
                               "no usable image pixel); losses and metrics skip it", min=-1, max=65535)
    label_rule: str = option("majority", help="classification: the chip's label is its most frequent class "
                             "('majority') or the class of its centre pixel ('centre')", choices=("majority", "centre"))
    min_labelled: float = option(0.0, help="with labels: skip chips whose labelled fraction is below this "
                                 "(classification: also the share the majority class needs)", min=0.0, max=1.0)

    def __post_init__(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise ValueError("options 'mean' and 'std' go together: give both (one value per band) or neither")
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError(f"option 'std' must be positive for every band, got {self.std}")
        if self.bands is not None and not self.bands:
            raise ValueError("option 'bands' is an empty list; give band names, or leave it unset for all bands")
        if self.labels is None and self.task is not None:
            raise ValueError(f"option 'task' = {self.task!r} needs 'labels' (a label raster or 'store:NAME')")
        if self.labels is not None and self.task is None:
            self.task = "segmentation"
        if self.labels is not None and self.num_classes is None:
            raise ValueError("option 'labels' needs 'num_classes' (how many classes the labels hold)")
        if self.label_values is not None and self.num_classes is not None and len(self.label_values) != self.num_classes:
            raise ValueError(f"option 'label_values' gives {len(self.label_values)} values for num_classes="
                             f"{self.num_classes}; expected one raster value per class")
        if self.class_names is not None and self.num_classes is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"option 'class_names' gives {len(self.class_names)} names for num_classes="
                             f"{self.num_classes}; expected one name per class")
        if self.num_classes is not None and 0 <= self.ignore_index < self.num_classes:
            raise ValueError(f"option 'ignore_index' {self.ignore_index} is a class index (num_classes="
                             f"{self.num_classes}); pick a value outside 0 .. {self.num_classes - 1}, e.g. 255")


#: The kind this plugin adds: how ``stac-zarr`` reads pixels, swappable by any installed plugin.
KINDS: list[KindSpec] = [
    KindSpec("stac_loader", "Loads STAC items onto a planned grid as a lazy (time, band, y, x) dask array.",
             "registry_gfm.data.stac_loaders:Loader"),
]

SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="stac_loader",
        name="stackstac",
        target="registry_gfm.data.stac_loaders:build_stackstac",
        summary="stackstac.stack on the planned grid (no bound snapping), skipping its no-op masked reads.",
        modality="imagery",
        tags=("gfm", "stac", "dask"),
    ),
    ComponentSpec(
        kind="stac_loader",
        name="odc-stac",
        target="registry_gfm.data.stac_loaders:build_odc_stac",
        summary="odc.stac.load on a GeoBox of the planned grid, one item per time step.",
        modality="imagery",
        tags=("gfm", "stac", "dask"),
    ),
    ComponentSpec(
        kind="data_source",
        name="stac-zarr",
        target="registry_gfm.data.stac_zarr:build_stac_zarr",
        summary="STAC search -> stackstac/odc-stac -> cloud mask -> Zarr v3 datacube, on dask (resumable).",
        modality="imagery",
        tags=("gfm", "stac", "zarr", "dask", "ingest"),
        config=StacZarrConfig,
        provides={"bands": None, "tokens": "continuous"},
    ),
    ComponentSpec(
        kind="data_source",
        name="zarr-chips",
        target="registry_gfm.data.zarr_chips:build_zarr_chips",
        summary="Grid or random (frames, bands, chip, chip) samples from a Zarr datacube, normalised per band.",
        modality="imagery",
        tags=("gfm", "zarr", "chips", "training"),
        config=ZarrChipsConfig,
        provides={"bands": None, "frames": None, "chip_size": None, "num_classes": None, "class_names": None,
                  "task": None, "ignore_index": None, "tokens": "continuous"},
    ),
]
