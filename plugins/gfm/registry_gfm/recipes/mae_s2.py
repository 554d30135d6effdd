"""Recipe ``mae-s2``: mae-tiny's model pretrained on a Sentinel-2 L2A box from Earth Search.

``examples/s2-earth-search.toml`` ingests the box through the ``earth-search-s2-l2a`` card (network access): the
six Prithvi bands at 20 m, clouds masked by SCL; ``examples/mae-s2.toml`` is this recipe as a file.
"""

from __future__ import annotations

import copy
from typing import Any

from registry_gfm.recipes.mae_tiny import CONFIG as MAE_TINY

CONFIG: dict[str, Any] = copy.deepcopy(MAE_TINY)
CONFIG["name"] = "mae-s2"
CONFIG["description"] = ("patch 4 + sincos-2d + ViT 4x192 + MAE (mask 0.75) on 32x32 Sentinel-2 L2A chips from Earth "
                         "Search (20 m, SCL-masked).")
CONFIG["data"]["store"] = "runs/s2-earth-search/datacube.zarr"


class MaeS2:
    """The recipe object: ``config()`` returns a fresh copy of the pipeline config."""

    def config(self) -> dict[str, Any]:
        return copy.deepcopy(CONFIG)
