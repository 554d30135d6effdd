"""``perplexity``: mean next-token loss over a whole split, weighted by token, with perplexity and bits per byte.

Bits per byte divide the summed loss (in bits) by the UTF-8 bytes of the predicted tokens, so models
with different tokenizers compare. Byte counts come from the tokenizer's ``token_bytes(id) -> bytes``
when it has one (exact, per id), else from ``decode`` of each window's targets, special tokens skipped
when ``decode`` takes ``skip_special`` (exact up to a character split across a window edge).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.nn import functional as F

from registry_core.nn import eval_mode
from registry_llm.evaluators.specs import PerplexityConfig

IGNORE = -100


def _as_tensor(value: Any) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)


def _batches(dataset: Any, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Stack items ``{"input_ids", "targets"}`` (tensors, arrays or lists) into ``(B, T)`` long batches."""
    n = len(dataset)
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, n))]
        try:
            ids = torch.stack([_as_tensor(it["input_ids"]).long() for it in items])
            targets = torch.stack([_as_tensor(it["targets"]).long() for it in items])
        except KeyError as exc:
            raise KeyError(f"perplexity: dataset items need 'input_ids' and 'targets', missing {exc}") from None
        yield ids, targets


class ByteCounter:
    """UTF-8 bytes of token ids, per id (a table) when the tokenizer can say, else by decoding."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.table: dict[int, int] = {}
        self.per_id = callable(getattr(tokenizer, "token_bytes", None))
        if not self.per_id and not callable(getattr(tokenizer, "decode", None)):
            raise TypeError("perplexity: the tokenizer has neither token_bytes(id) nor decode(ids); bits per byte "
                            "cannot be computed")

    def count(self, ids: Sequence[int]) -> int:
        if self.per_id:
            total = 0
            for i in ids:
                if i not in self.table:
                    self.table[i] = len(self.tokenizer.token_bytes(i))
                total += self.table[i]
            return total
        try:  # special tokens (<|eos|> between documents) are no text: skip them where the tokenizer can
            text = self.tokenizer.decode(list(ids), skip_special=True)
        except TypeError:
            text = self.tokenizer.decode(list(ids))
        return len(str(text).encode("utf-8"))


class PerplexityEvaluator:
    """``evaluate(pipeline, split) -> {"loss", "perplexity", "bits_per_byte", "tokens"}``.

    Uses ``pipeline.data.dataset(split)``, ``pipeline.parts``, ``pipeline.objective`` (which must offer
    ``logits(parts, ids)``, as ``next-token`` does) and ``pipeline.tokenizer``. Targets of -100, or the
    objective's ``pad_id``, are not counted.
    """

    def __init__(self, config: PerplexityConfig) -> None:
        self.config = config

    def evaluate(self, pipeline: Any, split: str = "val") -> dict[str, float]:
        objective, parts = pipeline.objective, pipeline.parts
        # Perplexity is of next-token predictions: a bidirectional model's logits (masked-lm's) see the token itself.
        if not callable(getattr(objective, "logits", None)) or not getattr(parts.backbone, "causal", False):
            raise TypeError(
                f"perplexity needs an objective with logits(parts, ids) over a causal backbone (e.g. 'next-token' "
                f"on 'gpt'), got {type(objective).__name__} on a "
                f"{'causal' if getattr(parts.backbone, 'causal', False) else 'bidirectional'} backbone"
            )
        dataset = pipeline.data.dataset(split)
        if len(dataset) == 0:
            raise ValueError(f"perplexity: split {split!r} has no samples")
        counter = ByteCounter(pipeline.tokenizer)
        pad_id = getattr(objective, "pad_id", None)
        device = next(parts.backbone.parameters()).device
        loss_sum, tokens, nbytes = 0.0, 0, 0
        with eval_mode(parts), torch.inference_mode():
            for b, (ids, targets) in enumerate(_batches(dataset, self.config.batch_size)):
                if self.config.max_batches is not None and b >= self.config.max_batches:
                    break
                if pad_id is not None:
                    targets = targets.masked_fill(targets == pad_id, IGNORE)
                logits = objective.logits(parts, ids.to(device))
                t = targets.to(device)
                loss_sum += float(F.cross_entropy(logits.flatten(0, 1).float(), t.flatten(),
                                                  ignore_index=IGNORE, reduction="sum"))
                valid = targets != IGNORE
                tokens += int(valid.sum())
                for row, keep in zip(targets, valid):
                    nbytes += counter.count(row[keep].tolist())
        if tokens == 0:
            raise ValueError(f"perplexity: split {split!r} has no target tokens to score (all ignored)")
        loss = loss_sum / tokens
        return {
            "loss": loss,
            "perplexity": math.exp(min(loss, 700.0)),
            "bits_per_byte": loss_sum / math.log(2) / max(nbytes, 1),
            "tokens": float(tokens),
        }


def build(config: PerplexityConfig) -> PerplexityEvaluator:
    return PerplexityEvaluator(config)
