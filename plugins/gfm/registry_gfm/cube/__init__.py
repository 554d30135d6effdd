"""The Zarr datacube: its store (layout, region writes, completion), its reader, band statistics, a chunk cache.

Its public names load on first use: importing the package (as ``plugin.py`` does for the light ``specs``) imports
nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_gfm._lazy import lazy_names

if TYPE_CHECKING:
    from registry_gfm.cube.band_stats import BandStats, compute_band_stats, load_band_stats, save_band_stats
    from registry_gfm.cube.chunk_cache import ChunkCache
    from registry_gfm.cube.reader import CubeInfo, StoredBand, open_cube, select_bands
    from registry_gfm.cube.store import array_encoding, finish_store, open_datacube, store_status
    from registry_gfm.errors import DatacubeError, IncompleteStoreError

#: Public name -> the module that defines it.
_NAMES = {
    "BandStats": "registry_gfm.cube.band_stats",
    "ChunkCache": "registry_gfm.cube.chunk_cache",
    "CubeInfo": "registry_gfm.cube.reader",
    "DatacubeError": "registry_gfm.errors",
    "IncompleteStoreError": "registry_gfm.errors",
    "StoredBand": "registry_gfm.cube.reader",
    "array_encoding": "registry_gfm.cube.store",
    "compute_band_stats": "registry_gfm.cube.band_stats",
    "finish_store": "registry_gfm.cube.store",
    "load_band_stats": "registry_gfm.cube.band_stats",
    "open_cube": "registry_gfm.cube.reader",
    "open_datacube": "registry_gfm.cube.store",
    "save_band_stats": "registry_gfm.cube.band_stats",
    "select_bands": "registry_gfm.cube.reader",
    "store_status": "registry_gfm.cube.store",
}

__getattr__ = lazy_names(__name__, _NAMES)

__all__ = ["BandStats", "ChunkCache", "CubeInfo", "DatacubeError", "IncompleteStoreError", "StoredBand", "array_encoding",
           "compute_band_stats", "finish_store", "load_band_stats", "open_cube", "open_datacube", "save_band_stats",
           "select_bands", "store_status"]
