"""Choices declared once: position modes, rotary conventions, MLP activations and the transformer options.

Torch-free, so spec modules (which must never import torch) and ``registry_core.nn`` read the same
lists; each tuple is derived from its ``Literal``, so type checkers see the very same names. Both bundled
backbones' configs extend :class:`TransformerOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from registry_core._spec import option

__all__ = [
    "ACTIVATIONS",
    "POSITION_MODES",
    "ROTARY_CONVENTIONS",
    "Activation",
    "PositionMode",
    "RotaryConvention",
    "TransformerOptions",
]

#: Where a positional encoder acts: added to the embeddings, rotating queries and keys, or as a score bias.
PositionMode = Literal["additive", "rotary", "attention_bias"]
POSITION_MODES: Final[tuple[PositionMode, ...]] = get_args(PositionMode)

#: How rotary embedding pairs dimensions: ``i`` with ``i + d/2`` (GPT-NeoX, LLaMA) or ``2i`` with ``2i+1`` (GPT-J).
RotaryConvention = Literal["rotate-half", "interleaved"]
ROTARY_CONVENTIONS: Final[tuple[RotaryConvention, ...]] = get_args(RotaryConvention)

#: MLP activations of ``registry_core.nn.MLP``; ``gelu-tanh`` is GPT-2's ``gelu_new``.
Activation = Literal["gelu", "gelu-tanh", "relu", "silu"]
ACTIVATIONS: Final[tuple[Activation, ...]] = get_args(Activation)


@dataclass
class TransformerOptions:
    """Width, depth, heads, dropout, MLP, activation, LayerNorm epsilon and init of a pre-LN transformer.

    A backbone's config extends it (``class GPTConfig(TransformerOptions)``), adds its own options after these
    and may redeclare one to change its default (the imagery ViT wires ``layer_norm_eps`` from its weights).
    """

    embed_dim: int = option(768, help="model width D (divisible by heads)", min=1)
    depth: int = option(12, help="number of transformer blocks", min=1)
    heads: int = option(12, help="attention heads per block", min=1)
    dropout: float = option(0.0, help="dropout on embeddings, attention weights and residual branches",
                            min=0.0, max=1.0)
    mlp_ratio: float = option(4.0, help="MLP hidden width as a multiple of embed_dim", min=0.0)
    activation: str = option("gelu", help=f"MLP activation, one of {', '.join(map(repr, ACTIVATIONS))}: 'gelu' is "
                             "the exact one, 'gelu-tanh' GPT-2's gelu_new", choices=ACTIVATIONS)
    layer_norm_eps: float | None = option(1e-5, help="LayerNorm epsilon", min=0.0)
    init_std: float = option(0.02, help="std of the normal init of linear layers (and a cls token); each residual "
                             "branch's output projection gets std / sqrt(2 depth)", min=0.0)

    def __post_init__(self) -> None:
        if self.embed_dim % self.heads:
            raise ValueError(f"embed_dim {self.embed_dim} must be divisible by heads {self.heads}")
