"""``instruct``: instruction tuning, the next-token loss on response tokens only.

The data (``instruction-pairs``) gives targets that are -100 outside responses, and for packed windows each
token's position within its pair and the pair's segment number: the backbone then keeps attention inside each
pair, so a window of packed pairs trains exactly as the pairs one by one would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.nn import functional as F

from registry_core.interfaces import ModelParts
from registry_llm.objectives.next_token import IGNORE, NextTokenObjective
from registry_llm.objectives.specs import NextTokenConfig

__all__ = ["InstructObjective", "build"]


class InstructObjective(NextTokenObjective):
    """``objective(parts, batch) -> (loss, {"tokens"})``: the mean over response tokens, packed pairs apart."""

    def forward(self, parts: ModelParts, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if "targets" not in batch:
            raise KeyError("objective 'instruct' needs targets marking the response tokens (an instruction-pairs "
                           "data source)")
        ids, targets = batch["input_ids"], batch["targets"]
        x = parts.embed(ids)
        hidden = parts.backbone(x, parts.positional, batch.get("positions"), segments=batch.get("segments"))
        logits = self.head(parts, hidden)
        counted = targets != IGNORE
        if not bool(counted.any()):  # a window of prompts only: nothing to learn, and no NaN
            return logits.sum() * 0.0, {"tokens": counted.sum().float()}
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)
        return loss, {"tokens": counted.sum().float()}


def build(config: NextTokenConfig) -> InstructObjective:
    return InstructObjective(config)
