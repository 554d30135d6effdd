"""Registers registry_gfm's components with registry_core (entry point ``gfm``); imports nothing heavy."""

from __future__ import annotations

from registry_core import ComponentSpec, hookimpl
from registry_gfm.backbones.specs import SPECS as BACKBONES
from registry_gfm.data.specs import SPECS as DATA
from registry_gfm.evaluators.specs import SPECS as EVALUATORS
from registry_gfm.heads.specs import SPECS as HEADS
from registry_gfm.objectives.specs import SPECS as OBJECTIVES
from registry_gfm.positions.specs import SPECS as POSITIONS
from registry_gfm.recipes.specs import SPECS as RECIPES
from registry_gfm.tokenizers.specs import SPECS as TOKENIZERS
from registry_gfm.weights.specs import SPECS as WEIGHTS


@hookimpl
def registry_core_components() -> list[ComponentSpec]:
    return [*DATA, *TOKENIZERS, *POSITIONS, *BACKBONES, *OBJECTIVES, *HEADS, *EVALUATORS, *WEIGHTS, *RECIPES]
