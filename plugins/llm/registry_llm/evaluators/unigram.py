"""``unigram-baseline``: the loss of a model that knows only token frequencies, the floor to beat.

Counts token frequencies over the train split (add-one smoothed), then scores the targets of the
evaluated split with them. A language model whose validation loss is not well below this number has
learned nothing beyond the unigram distribution.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from registry_llm.evaluators.specs import UnigramConfig


class UnigramBaseline:
    def __init__(self, config: UnigramConfig) -> None:
        self.config = config

    def _counts(self, data: Any, vocab: int) -> torch.Tensor:
        counts = torch.ones(vocab, dtype=torch.float64)  # add-one smoothing: no token has probability 0
        n = len(data) if self.config.max_windows is None else min(len(data), self.config.max_windows)
        for i in range(n):
            counts += torch.bincount(data[i]["targets"].flatten(), minlength=vocab)[:vocab].double()
        return counts

    def evaluate(self, pipeline: Any, split: str = "val") -> dict[str, float]:
        tok = pipeline.tokenizer
        vocab = int(getattr(tok, "padded_vocab_size", None) or tok.vocab_size)
        counts = self._counts(pipeline.data.dataset("train"), vocab)
        logp = (counts / counts.sum()).log()
        data = pipeline.data.dataset(split)
        if len(data) == 0:
            raise ValueError(f"unigram-baseline: the {split!r} split has no windows")
        total, tokens = 0.0, 0
        for i in range(len(data)):
            t = data[i]["targets"].flatten()
            total -= float(logp[t].sum())
            tokens += t.numel()
        loss = total / tokens
        return {"loss": loss, "perplexity": math.exp(loss), "tokens": float(tokens)}


def build(config: UnigramConfig) -> UnigramBaseline:
    return UnigramBaseline(config)
