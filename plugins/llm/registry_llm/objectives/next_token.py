"""``next-token``: causal language modelling, the cross-entropy of each token given the ones before it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from registry_core.interfaces import ModelParts
from registry_core.nn import KVCache
from registry_llm.objectives._lm_head import LMHead
from registry_llm.objectives.specs import NextTokenConfig

IGNORE = -100


class NextTokenObjective(nn.Module):
    """``objective(parts, batch) -> (loss, {"tokens"})`` for ``batch`` of ``(B, T)`` long tensors.

    With ``targets`` in the batch (the loader's +1-shifted windows) they are used as given; without,
    ``input_ids`` are shifted here. Targets equal to -100 or ``pad_id`` do not count; ``pad_id`` comes
    from the config (wired from the tokenizer) or, failing that, a ``pad_id`` attribute of the embedding.
    """

    #: ``tokens`` counts the targets the loss is a mean over: the trainer sums it and weighs the loss by it.
    count_metrics = ("tokens",)
    loss_weight = "tokens"

    def __init__(self, config: NextTokenConfig) -> None:
        super().__init__()
        self.config = config
        self.pad_id = config.pad_id
        self.head = LMHead("next-token", config.embed_dim, config.vocab_size, config.tie_weights)

    @property
    def vocab_size(self) -> int | None:
        return self.head.vocab_size

    def bind(self, parts: ModelParts) -> None:
        self.head.bind(parts)
        if self.pad_id is None:
            self.pad_id = getattr(parts.embed, "pad_id", None)

    def hidden(
        self,
        parts: ModelParts,
        ids: torch.Tensor,
        *,
        positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Backbone output ``(B, T, D)`` for token ids ``(B, T)``."""
        x = parts.embed(ids)
        out: torch.Tensor = parts.backbone(x, parts.positional, positions, keep=keep, cache=cache)
        return out

    def logits(
        self,
        parts: ModelParts,
        ids: torch.Tensor,
        *,
        positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, T, V)`` logits (``(B, 1, V)`` with ``last_only``, what generation needs); ``keep`` ``(B, K)``
        masks keys that are padding (K counts the cached tokens too), ``positions`` ``(T,)`` or ``(B, T)``."""
        h = self.hidden(parts, ids, positions=positions, cache=cache, keep=keep)
        if last_only:
            h = h[:, -1:]
        out: torch.Tensor = self.head(parts, h)
        return out

    def targets_of(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, targets)`` with pad targets set to -100; shifts ``input_ids`` when no targets are given."""
        ids = batch["input_ids"]
        targets = batch.get("targets")
        if targets is None:
            ids, targets = ids[:, :-1], ids[:, 1:]
        if targets.shape != ids.shape:
            raise ValueError(f"next-token: targets {tuple(targets.shape)} do not match input_ids {tuple(ids.shape)}")
        if self.pad_id is not None:
            targets = targets.masked_fill(targets == self.pad_id, IGNORE)
        return ids, targets

    def forward(self, parts: ModelParts, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(mean loss, {"tokens": counted targets})``; the metric stays a 0-d tensor so a GPU step never
        waits for the host (the trainer reads it when it logs)."""
        ids, targets = self.targets_of(batch)
        logits = self.head(parts, self.hidden(parts, ids))
        # Cross-entropy in float32 even under bf16 autocast: the log-sum-exp over V needs the range.
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)
        return loss, {"tokens": (targets != IGNORE).sum().float()}


    def generate(self, parts: ModelParts, prompt_ids: list[int], **options: Any) -> list[int]:
        """Continue ``prompt_ids`` with KV-cached decoding (see ``registry_llm.generation.generate``)."""
        from registry_llm.generation import generate

        return generate(parts, self, prompt_ids, **options)


def build(config: NextTokenConfig) -> NextTokenObjective:
    return NextTokenObjective(config)
