"""Registers registry_llm's components with registry_core (entry point ``llm``); imports nothing heavy."""

from __future__ import annotations

from registry_core import CommandSpec, ComponentSpec, ModalitySpec, hookimpl
from registry_llm.backbones.specs import SPECS as BACKBONES
from registry_llm.data.specs import SPECS as DATA
from registry_llm.evaluators.specs import SPECS as EVALUATORS
from registry_llm.objectives.specs import SPECS as OBJECTIVES
from registry_llm.positions.specs import SPECS as POSITIONS
from registry_llm.recipes.specs import SPECS as RECIPES
from registry_llm.tokenizers.specs import SPECS as TOKENIZERS
from registry_llm.weights.specs import SPECS as WEIGHTS


@hookimpl
def registry_core_components() -> list[ComponentSpec]:
    return [*DATA, *TOKENIZERS, *POSITIONS, *BACKBONES, *OBJECTIVES, *EVALUATORS, *WEIGHTS, *RECIPES]


@hookimpl
def registry_core_modalities() -> list[ModalitySpec]:
    return [ModalitySpec("text", "Natural-language or code text, tokenized into discrete ids.")]


@hookimpl
def registry_core_commands() -> list[CommandSpec]:
    return [
        CommandSpec("generate", "continue a prompt with a saved language-model pipeline",
                    arguments="registry_llm.commands:add_generate_arguments", handler="registry_llm.commands:generate"),
    ]
