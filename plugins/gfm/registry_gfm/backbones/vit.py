"""``vit``: the shared ``registry_core.nn.Transformer`` as a bidirectional encoder with an optional cls token."""

from __future__ import annotations

from registry_core.nn import Transformer
from registry_gfm.backbones.specs import DEFAULT_LAYER_NORM_EPS, ViTConfig

__all__ = ["build"]


def build(config: ViTConfig) -> Transformer:
    """The encoder: ``backbone(x, positional, placement, keep_index=...) -> (B, [1 +] N_kept, D)``."""
    return Transformer(
        config.embed_dim,
        config.depth,
        config.heads,
        causal=False,
        mlp_ratio=config.mlp_ratio,
        dropout=config.dropout,
        activation=config.activation,
        eps=DEFAULT_LAYER_NORM_EPS if config.layer_norm_eps is None else config.layer_norm_eps,
        init_std=config.init_std,
        prefix_tokens=1 if config.cls_token else 0,
        norm=config.norm,
    )
