"""Names declared once: position modes, rotary conventions and MLP activations.

Torch-free, so spec modules (which must never import torch) and ``registry_core.nn`` read the same
lists; each tuple is derived from its ``Literal``, so type checkers see the very same names.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "ACTIVATIONS",
    "POSITION_MODES",
    "ROTARY_CONVENTIONS",
    "Activation",
    "PositionMode",
    "RotaryConvention",
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
