"""Registers registry_llm's components with registry_core (entry point ``llm``); imports nothing heavy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_core import CommandSpec, ComponentSpec, ModalitySpec, hookimpl
from registry_llm.backbones.specs import SPECS as BACKBONES
from registry_llm.data.cards import SPECS as DATASET_CARDS
from registry_llm.data.specs import SPECS as DATA
from registry_llm.evaluators.specs import SPECS as EVALUATORS
from registry_llm.heads.specs import SPECS as HEADS
from registry_llm.objectives.specs import SPECS as OBJECTIVES
from registry_llm.positions.specs import SPECS as POSITIONS
from registry_llm.recipes.specs import SPECS as RECIPES
from registry_llm.tokenizers.specs import SPECS as TOKENIZERS
from registry_llm.weights.cards import SPECS as GPT2_CARDS
from registry_llm.weights.specs import SPECS as WEIGHTS

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

    from registry_core.report import ReportFigure, ReportRun, ReportTable


@hookimpl
def registry_core_components() -> list[ComponentSpec]:
    return [*DATA, *DATASET_CARDS, *TOKENIZERS, *POSITIONS, *BACKBONES, *OBJECTIVES, *HEADS, *EVALUATORS, *WEIGHTS, *GPT2_CARDS, *RECIPES]


@hookimpl
def registry_core_modalities() -> list[ModalitySpec]:
    return [ModalitySpec("text", "Natural-language or code text, tokenized into discrete ids.",
                         server="registry_llm.serve.command:text_server",
                         serve_arguments="registry_llm.commands:add_text_serve_arguments")]


@hookimpl
def registry_core_commands() -> list[CommandSpec]:
    return [
        CommandSpec("generate", "continue a prompt with a saved language-model pipeline",
                    arguments="registry_llm.commands:add_generate_arguments", handler="registry_llm.commands:generate"),
    ]


@hookimpl
def registry_core_report_figures(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """1-D positions and causal attention of a language-model run (the model is loaded inside); a finetuned run's
    few-label curve and confusion matrix instead."""
    from registry_llm.report import is_task_run, is_text_run, run_figures, task_figures

    if not is_text_run(run):
        return []
    return task_figures(run, out_dir) if is_task_run(run) else run_figures(run, out_dir)


@hookimpl
def registry_core_report_tables(run: ReportRun) -> list[ReportTable]:
    """An instruction-tuned run's answers to held-out questions, before and after tuning."""
    from registry_llm.report import is_text_run, task_tables

    return task_tables(run) if is_text_run(run) else []


@hookimpl
def registry_core_report_metrics(run: ReportRun) -> Mapping[str, float]:
    """Perplexity, bits per byte and the unigram baseline's perplexity of a text run; a finetuned run's scores."""
    from registry_llm.report import key_figures, task_key_figures

    return {**key_figures(run), **task_key_figures(run)}


@hookimpl
def registry_core_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``run --sample PROMPT``: after training, a continuation of PROMPT by a language model."""
    parser.add_argument("--sample", default="The", metavar="PROMPT",
                        help="after training, print a continuation of PROMPT when the objective can generate "
                             "('' for none; plugin llm)")


@hookimpl
def registry_core_run_extras(pipeline: Any, args: argparse.Namespace) -> Mapping[str, str] | None:
    """The ``--sample`` continuation (48 tokens, temperature 0.8, top-k 40, seed 0) of a generative run."""
    prompt = getattr(args, "sample", "")
    if not prompt or not hasattr(pipeline.objective, "generate") or not hasattr(pipeline.tokenizer, "decode"):
        return None
    from registry_llm.commands import continue_prompt

    return {"sample": continue_prompt(pipeline, prompt, max_new_tokens=48, temperature=0.8, top_k=40, seed=0)}
