"""Training chips cut from a datacube: the ``zarr-chips`` source, its windows and its land-cover labels.

Its public names load on first use: importing the package (as ``plugin.py`` does for the light ``specs``) imports
nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_gfm._lazy import lazy_names

if TYPE_CHECKING:
    from registry_gfm.chips.labels import LabelSpec, prepare_labels
    from registry_gfm.chips.specs import ZarrChipsConfig
    from registry_gfm.chips.windows import Region, grid_windows, random_window, split_region
    from registry_gfm.chips.zarr_chips import ChipDataset, ZarrChips, build_zarr_chips, stats_path

#: Public name -> the module that defines it.
_NAMES = {
    "ChipDataset": "registry_gfm.chips.zarr_chips",
    "LabelSpec": "registry_gfm.chips.labels",
    "Region": "registry_gfm.chips.windows",
    "ZarrChips": "registry_gfm.chips.zarr_chips",
    "ZarrChipsConfig": "registry_gfm.chips.specs",
    "build_zarr_chips": "registry_gfm.chips.zarr_chips",
    "grid_windows": "registry_gfm.chips.windows",
    "prepare_labels": "registry_gfm.chips.labels",
    "random_window": "registry_gfm.chips.windows",
    "split_region": "registry_gfm.chips.windows",
    "stats_path": "registry_gfm.chips.zarr_chips",
}

__getattr__ = lazy_names(__name__, _NAMES)

__all__ = ["ChipDataset", "LabelSpec", "Region", "ZarrChips", "ZarrChipsConfig", "build_zarr_chips", "grid_windows",
           "prepare_labels", "random_window", "split_region", "stats_path"]
