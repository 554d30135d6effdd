"""Config schemas and specs of the pretrained-weight formats of the text stack (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry_core import ComponentSpec, option


@dataclass
class HFGPT2Config:
    """A Hugging Face GPT-2 checkpoint in a local folder (``config.json`` + ``model.safetensors``)."""

    path: Path = option(
        help="Folder with config.json, model.safetensors and the tokenizer files (tokenizer.json, or "
        "vocab.json + merges.txt)."
    )


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="weights",
        name="hf-gpt2",
        target="registry_llm.weights.hf_gpt2:build",
        summary="Import/export a Hugging Face GPT-2 checkpoint (safetensors) into gpt + learned + next-token.",
        modality="text",
        tags=("gpt2", "huggingface", "safetensors"),
        config=HFGPT2Config,
        requires={"causal": True, "tokens": "discrete", "position_mode": "additive"},
        exporter="registry_llm.weights.hf_gpt2:export_run",
    ),
]
