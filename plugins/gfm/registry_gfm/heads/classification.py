"""``classification``: one class per chip from pooled encoder features (linear or a one-hidden-layer MLP)."""

from __future__ import annotations

import torch
from torch import nn

from registry_core.interfaces import ModelParts
from registry_gfm.heads.features import TokenFeatures
from registry_gfm.heads.specs import ClassificationHeadConfig

__all__ = ["ClassificationHead", "build"]


class ClassificationHead(nn.Module):
    """``head(features) -> (B, num_classes)`` logits; sized in ``bind`` from the backbone's width."""

    task = "classification"

    def __init__(self, config: ClassificationHeadConfig) -> None:
        super().__init__()
        self.config = config
        #: Encoder blocks to tap: only the last.
        self.taps: list[int] = [-1]

    def bind(self, parts: ModelParts) -> None:
        cfg = self.config
        if cfg.num_classes is None:
            raise ValueError("head 'classification' needs num_classes (set it, or give the data source labels)")
        dim = cfg.embed_dim or int(parts.backbone.embed_dim)
        self.norm = nn.LayerNorm(dim)
        layers: list[nn.Module] = []
        if cfg.hidden_dim:
            layers += [nn.Linear(dim, cfg.hidden_dim), nn.GELU()]
            dim = cfg.hidden_dim
        out = nn.Linear(dim, cfg.num_classes)
        nn.init.trunc_normal_(out.weight, std=0.01)  # MAE's finetuning init: small logits at the start
        nn.init.zeros_(out.bias)
        self.mlp = nn.Sequential(*layers, nn.Dropout(cfg.dropout), out)

    def forward(self, features: TokenFeatures) -> torch.Tensor:
        out: torch.Tensor = self.mlp(self.norm(features.pooled(self.config.pool)))
        return out


def build(config: ClassificationHeadConfig) -> ClassificationHead:
    return ClassificationHead(config)
