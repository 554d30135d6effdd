"""Registers registry_llm's components with registry_core (entry point ``llm``); imports nothing heavy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_core import CommandSpec, ComponentSpec, ModalitySpec, hookimpl
from registry_llm.backbones.specs import SPECS as BACKBONES
from registry_llm.data.specs import SPECS as DATA
from registry_llm.evaluators.specs import SPECS as EVALUATORS
from registry_llm.objectives.specs import SPECS as OBJECTIVES
from registry_llm.positions.specs import SPECS as POSITIONS
from registry_llm.recipes.specs import SPECS as RECIPES
from registry_llm.tokenizers.specs import SPECS as TOKENIZERS
from registry_llm.weights.specs import SPECS as WEIGHTS

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from registry_core.report import ReportFigure, ReportRun


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


@hookimpl
def registry_core_report_figures(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """1-D positions and causal attention of a text run (the model is loaded inside)."""
    from registry_llm.report import is_text_run, run_figures

    return run_figures(run, out_dir) if is_text_run(run) else []


@hookimpl
def registry_core_report_metrics(run: ReportRun) -> Mapping[str, float]:
    """Perplexity, bits per byte and the unigram baseline's perplexity of a text run."""
    from registry_llm.report import key_figures

    return key_figures(run)
