"""``serve`` for an imagery run: ``POST /v1/predict`` takes a GeoTIFF window and answers the class map, the class
probabilities or the patch embeddings as a GeoTIFF with the window's CRS and transform, by ``predict``'s own code.

Its public name loads on first use: the CLI imports ``registry_gfm.commands`` for the options, which must not import
torch or the web stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry_gfm.serve._predict_app import WindowPredictor, imagery_server, served_imagery

__all__ = ["WindowPredictor", "imagery_server", "served_imagery"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'registry_gfm.serve' has no attribute {name!r}")
    return getattr(importlib.import_module("registry_gfm.serve._predict_app"), name)
