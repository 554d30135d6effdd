"""Recipe ``gpt-tinystories``: the gpt-tiny model trained on TinyStories, pulled from the Hugging Face Hub by its card.

The data slot is the ``tinystories`` card (its train parquet shards within the card's byte budget); the
tokenizer is trained on them, the model and schedule are gpt-tiny's. ``examples/gpt-tinystories.toml`` is the same
pipeline as a file.
"""

from __future__ import annotations

import copy
from typing import Any

from registry_llm.recipes.gpt_tiny import CONFIG as GPT_TINY

CONFIG: dict[str, Any] = {
    **copy.deepcopy(GPT_TINY),
    "name": "gpt-tinystories",
    "description": "BPE (2048) + GPT 4x128 with RoPE + next-token on TinyStories, pulled from the hub by its card.",
    "data": {"use": "tinystories", "seq_len": 128, "val_fraction": 0.05, "dedup": "exact", "quality_filter": False,
             "max_documents": 200_000},
}


class GptTinyStories:
    """The recipe object: ``config()`` returns a fresh copy of the pipeline config."""

    def config(self) -> dict[str, Any]:
        return copy.deepcopy(CONFIG)
