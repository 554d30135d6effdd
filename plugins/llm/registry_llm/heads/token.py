"""``token-classification``: a class per token from each hidden state (tagging, named entities)."""

from __future__ import annotations

import torch
from torch import nn

from registry_core.interfaces import ModelParts
from registry_llm.heads.specs import TokenClassificationConfig

__all__ = ["TokenClassificationHead", "build"]


class TokenClassificationHead(nn.Module):
    """``head(hidden, keep) -> (B, T, num_classes)`` logits; sized in ``bind`` from the backbone's width."""

    task = "token-classification"

    def __init__(self, config: TokenClassificationConfig) -> None:
        super().__init__()
        self.config = config

    def bind(self, parts: ModelParts) -> None:
        cfg = self.config
        if cfg.num_classes is None:
            raise ValueError("head 'token-classification' needs num_classes (set it, or compose it with a data source "
                             "of labelled spans)")
        dim = cfg.embed_dim or int(parts.backbone.embed_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.score = nn.Linear(dim, cfg.num_classes)
        nn.init.normal_(self.score.weight, std=0.02)
        nn.init.zeros_(self.score.bias)

    def forward(self, hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.score(self.dropout(hidden))
        return out


def build(config: TokenClassificationConfig) -> TokenClassificationHead:
    return TokenClassificationHead(config)
