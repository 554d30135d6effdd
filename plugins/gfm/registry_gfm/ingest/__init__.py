"""The ingest: STAC search, plan, loaders and cloud masks made into a Zarr datacube (the ``stac-zarr`` source).

Its public names load on first use: importing the package (as ``plugin.py`` does for the light ``specs``) imports
nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_gfm._lazy import lazy_names

if TYPE_CHECKING:
    from registry_gfm.ingest.cloud_mask import MASKS, CloudMask, clear_pixels
    from registry_gfm.ingest.loaders import Loader, fill_aware_reader
    from registry_gfm.ingest.plan import BandInfo, Grid, IngestPlan, PlanError, make_plan
    from registry_gfm.ingest.search import SearchError, SearchParams, search_items
    from registry_gfm.ingest.specs import StacZarrConfig
    from registry_gfm.ingest.stac_zarr import IngestError, StacZarr, TimeSliceDataset, run_ingest

#: Public name -> the module that defines it.
_NAMES = {
    "BandInfo": "registry_gfm.ingest.plan",
    "CloudMask": "registry_gfm.ingest.cloud_mask",
    "Grid": "registry_gfm.ingest.plan",
    "IngestError": "registry_gfm.ingest.stac_zarr",
    "IngestPlan": "registry_gfm.ingest.plan",
    "Loader": "registry_gfm.ingest.loaders",
    "MASKS": "registry_gfm.ingest.cloud_mask",
    "PlanError": "registry_gfm.ingest.plan",
    "SearchError": "registry_gfm.ingest.search",
    "SearchParams": "registry_gfm.ingest.search",
    "StacZarr": "registry_gfm.ingest.stac_zarr",
    "StacZarrConfig": "registry_gfm.ingest.specs",
    "TimeSliceDataset": "registry_gfm.ingest.stac_zarr",
    "clear_pixels": "registry_gfm.ingest.cloud_mask",
    "fill_aware_reader": "registry_gfm.ingest.loaders",
    "make_plan": "registry_gfm.ingest.plan",
    "run_ingest": "registry_gfm.ingest.stac_zarr",
    "search_items": "registry_gfm.ingest.search",
}

__getattr__ = lazy_names(__name__, _NAMES)

__all__ = ["MASKS", "BandInfo", "CloudMask", "Grid", "IngestError", "IngestPlan", "Loader", "PlanError", "SearchError",
           "SearchParams", "StacZarr", "StacZarrConfig", "TimeSliceDataset", "clear_pixels", "fill_aware_reader",
           "make_plan", "run_ingest", "search_items"]
