"""``export RUN --to hf-gpt2``: a language model as GPT2LMHeadModel, a ``classify`` run as GPT2ForSequenceClassification
(its LoRA adapters merged, and also in peft's format under ``out/peft``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry_llm.adapters.peft_format import export_classifier
from registry_llm.objectives.classify import ClassifyObjective
from registry_llm.weights.hf_gpt2 import export_run as export_language_model
from registry_llm.weights.hf_gpt2 import exportable

__all__ = ["export_run"]


def export_run(pipeline: Any, out_dir: str | Path) -> Path:
    """The run as a folder ``transformers`` opens; ValueError before anything is written when it has no GPT-2 form."""
    if isinstance(pipeline.objective, ClassifyObjective):
        exportable(pipeline, lm_head=False)
        return export_classifier(pipeline, out_dir)
    return export_language_model(pipeline, out_dir)
