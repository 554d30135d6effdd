"""Recipe ``gpt-tiny``: a small GPT trained on Python's own documentation (``pydoc_data/topics.py``).

Sized to bring the validation loss well below the unigram baseline in a few minutes on 2 CPU cores;
``examples/gpt-tiny.toml`` is the same pipeline as a file.
"""

from __future__ import annotations

from typing import Any

CONFIG: dict[str, Any] = {
    "name": "gpt-tiny",
    "description": "BPE (2048) + GPT 4x128 with RoPE + next-token on the embedded pydoc corpus.",
    "data": {"use": "text-shards", "seq_len": 128, "val_fraction": 0.1,
             "dedup": "exact", "quality_filter": False},
    "tokenizer": {"use": "bpe", "vocab_size": 2048},
    "positional": {"use": "rope"},
    "backbone": {"use": "gpt", "embed_dim": 128, "depth": 4, "heads": 4, "max_positions": 256, "dropout": 0.0},
    "objective": {"use": "next-token"},
    "evaluators": [{"use": "perplexity"}, {"use": "unigram-baseline"}],
    "train": {"steps": 400, "batch_size": 16, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 30,
              "weight_decay": 0.1, "log_every": 50, "checkpoint_every": 200, "seed": 0},
}


class GptTiny:
    """The recipe object: ``config()`` returns a fresh copy of the pipeline config."""

    def config(self) -> dict[str, Any]:
        import copy

        return copy.deepcopy(CONFIG)
