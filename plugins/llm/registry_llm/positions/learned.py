"""``learned``: one trained vector per position added to the embeddings (GPT-2's ``wpe``)."""

from __future__ import annotations

import torch
from torch import nn

from registry_core.nn import check_range, lookup, span
from registry_llm.positions.specs import DEFAULT_MAX_POSITIONS, LearnedConfig


class LearnedPositions(nn.Module):
    """``forward(x, positions) -> x + weight[positions]`` with ``weight`` ``(max_positions, D)``."""

    mode = "additive"
    grid = 1

    def __init__(self, embed_dim: int, max_positions: int | None = None, init_std: float = 0.02):
        super().__init__()
        self.embed_dim = embed_dim
        self.max_positions = max_positions or DEFAULT_MAX_POSITIONS
        self.weight = nn.Parameter(torch.empty(self.max_positions, embed_dim))
        nn.init.normal_(self.weight, mean=0.0, std=init_std)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-1] != self.embed_dim:
            raise ValueError(
                f"positional encoder 'learned' has embed_dim {self.embed_dim}, the input has {x.shape[-1]}"
            )
        pos, needed = span("learned", positions, x.shape[-2])
        check_range("learned", needed, self.max_positions)
        return x + lookup(self.weight, pos, x.shape[-2]).to(x.dtype)


def build(config: LearnedConfig) -> LearnedPositions:
    if config.embed_dim is None:
        raise ValueError(
            "positional_encoder 'learned': embed_dim is not set; pass embed_dim=... or compose it with a backbone"
        )
    return LearnedPositions(config.embed_dim, config.max_positions, config.init_std)
