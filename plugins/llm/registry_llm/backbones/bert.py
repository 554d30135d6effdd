"""``bert``: the bidirectional encoder, the shared ``registry_core.nn.Transformer`` with ``causal=False``; BERT
itself is ``norm = "post"`` with two token types and a pooler."""

from __future__ import annotations

import torch
from torch import nn

from registry_core.nn import Transformer
from registry_llm.backbones._stack import transformer_from
from registry_llm.backbones.specs import BertConfig

__all__ = ["build", "pooled"]


def build(config: BertConfig) -> Transformer:
    stack = transformer_from(config, causal=False)
    if config.pooler:
        stack.pooler = nn.Linear(config.embed_dim, config.embed_dim)
        nn.init.normal_(stack.pooler.weight, mean=0.0, std=config.init_std)
        nn.init.zeros_(stack.pooler.bias)
    return stack


def pooled(backbone: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """BERT's sentence vector ``(B, D)``: ``tanh(pooler(hidden[:, 0]))`` of the backbone output ``(B, T, D)``."""
    pooler = getattr(backbone, "pooler", None)
    if not isinstance(pooler, nn.Linear):
        raise ValueError("this bert backbone has no pooler; build it with pooler = true")
    return torch.tanh(pooler(hidden[:, 0]))
