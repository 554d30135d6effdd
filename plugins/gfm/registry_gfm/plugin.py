"""Registers registry_gfm's components with registry_core (entry point ``gfm``); imports nothing heavy."""

from __future__ import annotations

from registry_core import ComponentSpec, KindSpec, hookimpl
from registry_gfm.backbones.specs import SPECS as BACKBONES
from registry_gfm.data.specs import KINDS
from registry_gfm.data.specs import SPECS as DATA
from registry_gfm.evaluators.specs import SPECS as EVALUATORS
from registry_gfm.heads.specs import SPECS as HEADS
from registry_gfm.objectives.specs import SPECS as OBJECTIVES
from registry_gfm.positions.specs import SPECS as POSITIONS
from registry_gfm.recipes.specs import SPECS as RECIPES
from registry_gfm.tokenizers.specs import SPECS as TOKENIZERS
from registry_gfm.weights.specs import SPECS as WEIGHTS


@hookimpl
def registry_core_kinds() -> list[KindSpec]:
    return KINDS


@hookimpl
def registry_core_components() -> list[ComponentSpec]:
    return [*DATA, *TOKENIZERS, *POSITIONS, *BACKBONES, *OBJECTIVES, *HEADS, *EVALUATORS, *WEIGHTS, *RECIPES]


@hookimpl
def registry_core_band_key(name: str) -> str | None:
    """A band's common name from the band catalog (``B8A``, HLS L30 ``B05`` and ``nir08`` are ``nir08``).

    Names that mean different bands in different sensors (``B05``) or that the catalog lacks give None.
    """
    from registry_gfm.bands import BandLookupError, lookup_band

    try:
        return lookup_band(name).common_name
    except BandLookupError:
        return None
