"""``export RUN --to hf-bert``: a masked-LM run as BertForMaskedLM, a ``classify`` run as BertForSequenceClassification
(its LoRA adapters merged, and also in peft's format under ``out/peft``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry_llm.adapters.peft_bert import export_bert_classifier
from registry_llm.objectives.classify import ClassifyObjective
from registry_llm.weights.hf_bert import export_run as export_masked_lm
from registry_llm.weights.hf_bert import exportable

__all__ = ["export_run"]


def export_run(pipeline: Any, out_dir: str | Path) -> Path:
    """The run as a folder ``transformers`` opens; ValueError before anything is written when it has no BERT form."""
    if isinstance(pipeline.objective, ClassifyObjective):
        exportable(pipeline, mlm_head=False)
        return export_bert_classifier(pipeline, out_dir)
    return export_masked_lm(pipeline, out_dir)
