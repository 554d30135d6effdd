"""The ingest's light manifest: ``stac-zarr``'s config and spec, and the ``stac_loader`` kind (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry_core import ComponentSpec, KindSpec, option
from registry_gfm.dask_runtime import scheduler_problem
from registry_gfm.ingest.validators import check_bbox, check_geometry, check_interval, epsg_code

__all__ = ["CLOUD_MASKS", "CREDENTIALS", "KINDS", "RESAMPLINGS", "SIGNINGS", "SPECS", "StacZarrConfig"]

# --- stac-zarr: STAC search -> stackstac / odc-stac -> cloud mask -> Zarr datacube ---------------------------

#: Cloud masks ``stac-zarr`` knows (registry_gfm.ingest.cloud_mask.MASKS).
CLOUD_MASKS = ("none", "scl", "qa_pixel", "fmask")
#: How asset links are signed before reading (registry_gfm.ingest.access).
SIGNINGS = ("none", "planetary-computer")
#: Credentials the asset reads can need (registry_gfm.ingest.access).
CREDENTIALS = ("none", "earthdata", "aws-requester-pays")
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
                         "stackstac, odc-stac, or one another plugin registers (`list stac_loader`)",
                         ref="stac_loader")
    store: str = option("datacube.zarr", help="path of the Zarr v3 datacube to write (resumed if it exists)")
    scheduler: str = option("threads", help="dask scheduler: 'threads', 'synchronous', 'local:N' (a LocalCluster "
                            "of N worker processes) or a scheduler address such as 'tcp://host:8786'")
    area_required: bool = option(False, help="refuse a search without bbox or intersects (the STAC cards set it: a "
                                 "whole collection holds millions of items)")
    signing: str = option("none", help="how asset links are made readable: none (public) or planetary-computer "
                          "(SAS tokens from the planetary-computer package, installed with registry-gfm"
                          "[planetary-computer]); signed links are used for reading only, never recorded",
                          choices=SIGNINGS)
    credentials: str = option("none", help="credentials the asset reads need: none, earthdata (EARTHDATA_TOKEN or "
                              "a ~/.netrc entry for urs.earthdata.nasa.gov) or aws-requester-pays (AWS credentials; "
                              "reads are billed to you); checked before the search", choices=CREDENTIALS)
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

    @property
    def bands(self) -> tuple[str, ...]:
        """The ``bands`` port: the ordered band names, as given in ``assets``."""
        return tuple(self.assets)


#: The kind this plugin adds: how ``stac-zarr`` reads pixels, swappable by any installed plugin.
KINDS: list[KindSpec] = [
    KindSpec("stac_loader", "Loads STAC items onto a planned grid as a lazy (time, band, y, x) dask array.",
             "registry_gfm.ingest.loaders:Loader"),
]

SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="stac_loader",
        name="stackstac",
        target="registry_gfm.ingest.loaders:build_stackstac",
        summary="stackstac.stack on the planned grid (no bound snapping), skipping its no-op masked reads.",
        modality="imagery",
        tags=("gfm", "stac", "dask"),
    ),
    ComponentSpec(
        kind="stac_loader",
        name="odc-stac",
        target="registry_gfm.ingest.loaders:build_odc_stac",
        summary="odc.stac.load on a GeoBox of the planned grid, one item per time step.",
        modality="imagery",
        tags=("gfm", "stac", "dask"),
    ),
    ComponentSpec(
        kind="data_source",
        name="stac-zarr",
        target="registry_gfm.ingest.stac_zarr:build_stac_zarr",
        summary="STAC search -> stackstac/odc-stac -> cloud mask -> Zarr v3 datacube, on dask (resumable).",
        modality="imagery",
        tags=("gfm", "stac", "zarr", "dask", "ingest"),
        config=StacZarrConfig,
        provides={"bands": None, "tokens": "continuous"},
    ),
]
