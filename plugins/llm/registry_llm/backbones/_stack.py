"""Builds the shared ``registry_core.nn.Transformer`` from a backbone config (used by ``gpt`` and ``bert``)."""

from __future__ import annotations

from registry_core.nn import Transformer
from registry_llm.backbones.specs import TransformerConfig


def transformer_from(config: TransformerConfig, *, causal: bool) -> Transformer:
    """The stack with every option of ``config``; ``causal`` picks decoder or encoder."""
    return Transformer(
        config.embed_dim,
        config.depth,
        config.heads,
        causal=causal,
        mlp_ratio=config.mlp_ratio,
        bias=config.bias,
        dropout=config.dropout,
        activation=config.activation,
        max_positions=config.max_positions,
        eps=config.layer_norm_eps,
        init_std=config.init_std,
        norm=config.norm,
        type_vocab_size=int(getattr(config, "type_vocab_size", 0)),
    )
