"""``sequence-classification``: one class per text from a pooled hidden state and a linear layer.

``last`` reads the last real (non-pad) token, as GPT2ForSequenceClassification does, so a causal model's
summary of the whole text is what is classified; ``first`` reads the first token ([CLS] for BERT); ``mean``
averages the real tokens; ``pooler`` is BertForSequenceClassification's reading: the bert backbone's own pooler,
``tanh(dense([CLS]))``, whose weights come with a BERT checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn

from registry_core.interfaces import ModelParts
from registry_llm.heads.specs import SequenceClassificationConfig

__all__ = ["SequenceClassificationHead", "build", "pool_hidden"]


def pool_hidden(hidden: torch.Tensor, keep: torch.Tensor, pool: str) -> torch.Tensor:
    """``(B, D)`` from ``hidden`` ``(B, T, D)`` and the real-token mask ``keep`` ``(B, T)``."""
    if pool == "first":
        return hidden[:, 0]
    if pool == "mean":
        weights = keep.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    # last: the highest index holding a real token (position 0 when a row is all padding)
    index = (torch.arange(keep.shape[1], device=keep.device) * keep.long()).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


class SequenceClassificationHead(nn.Module):
    """``head(hidden, keep) -> (B, num_classes)`` logits; sized in ``bind`` from the backbone's width."""

    task = "classification"

    def __init__(self, config: SequenceClassificationConfig) -> None:
        super().__init__()
        self.config = config
        self.pool = config.pool

    def bind(self, parts: ModelParts) -> None:
        cfg = self.config
        if self.pool == "pooler" and not isinstance(getattr(parts.backbone, "pooler", None), nn.Linear):
            raise ValueError("head 'sequence-classification': pool = 'pooler' reads BERT's pooler, and this backbone "
                             "has none; build bert with pooler = true, or pool 'first'")
        if cfg.num_classes is None:
            raise ValueError("head 'sequence-classification' needs num_classes (set it, or compose it with a data "
                             "source of labelled texts)")
        if self.pool == "auto":
            self.pool = "last" if getattr(parts.backbone, "causal", True) else "first"
        dim = cfg.embed_dim or int(parts.backbone.embed_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.score = nn.Linear(dim, cfg.num_classes, bias=cfg.bias)
        nn.init.normal_(self.score.weight, std=0.02)

    def features(self, hidden: torch.Tensor, keep: torch.Tensor, backbone: nn.Module | None = None) -> torch.Tensor:
        """``(B, D)``: the vector this head scores (``backbone`` is needed for ``pool = 'pooler'``)."""
        if self.pool == "pooler":
            from registry_llm.backbones.bert import pooled

            if backbone is None:
                raise ValueError("head 'sequence-classification' with pool = 'pooler' needs the backbone")
            return pooled(backbone, hidden)
        return pool_hidden(hidden, keep, self.pool)

    def forward(self, hidden: torch.Tensor, keep: torch.Tensor, backbone: nn.Module | None = None) -> torch.Tensor:
        out: torch.Tensor = self.score(self.dropout(self.features(hidden, keep, backbone)))
        return out


def build(config: SequenceClassificationConfig) -> SequenceClassificationHead:
    return SequenceClassificationHead(config)
