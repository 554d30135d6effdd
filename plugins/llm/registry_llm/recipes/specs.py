"""The light manifest of this folder's components: named, complete pipeline configs (no heavy imports)."""

from __future__ import annotations

from registry_core import ComponentSpec

SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="recipe",
        name="gpt-tiny",
        target="registry_llm.recipes.gpt_tiny:GptTiny",
        summary="BPE + GPT (RoPE) + next-token on the embedded pydoc corpus; trains in minutes on a CPU.",
        modality="text",
        tags=("llm", "demo"),
    ),
    ComponentSpec(
        kind="recipe",
        name="gpt-tinystories",
        target="registry_llm.recipes.gpt_tinystories:GptTinyStories",
        summary="gpt-tiny's model on TinyStories, pulled from the Hugging Face Hub by its card (network on first run).",
        modality="text",
        tags=("llm", "pretrained-data"),
    ),
    ComponentSpec(
        kind="recipe",
        name="cls-tiny",
        target="registry_llm.recipes.finetune_tiny:ClsTiny",
        summary="gpt-tiny's pretrained model + LoRA + a classification head on the standard library's docstrings "
        "(8 module families); needs runs/gpt-tiny.",
        modality="text",
        tags=("llm", "finetuning", "lora", "classification"),
    ),
    ComponentSpec(
        kind="recipe",
        name="sft-tiny",
        target="registry_llm.recipes.finetune_tiny:SftTiny",
        summary="gpt-tiny's pretrained model instruction-tuned on Python's documentation topics; needs runs/gpt-tiny.",
        modality="text",
        tags=("llm", "finetuning", "instruction-tuning", "sft"),
    ),
]
