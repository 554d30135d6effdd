"""Config schemas and specs of the text backbones: ``gpt`` (causal) and ``bert`` (bidirectional)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, option
from registry_core.names import ACTIVATIONS, POSITION_MODES


@dataclass
class TransformerConfig:
    """Options shared by both backbones (one pre-LN transformer implementation, ``registry_core.nn``)."""

    embed_dim: int = option(768, help="Model width D (divisible by heads).", min=1)
    depth: int = option(12, help="Number of transformer blocks.", min=1)
    heads: int = option(12, help="Attention heads per block.", min=1)
    dropout: float = option(
        0.0, help="Dropout on embeddings, attention weights and residual branches.", min=0.0, max=1.0
    )
    max_positions: int = option(1024, help="Longest sequence (context length) the model accepts.", min=1)
    bias: bool = option(True, help="Biases in linear layers and LayerNorms (GPT-2: true).")
    mlp_ratio: float = option(4.0, help="MLP hidden width as a multiple of embed_dim.", min=0.0)
    activation: str = option(
        "gelu",
        help=f"MLP activation, one of {', '.join(map(repr, ACTIVATIONS))}: 'gelu' is the exact one, 'gelu-tanh' "
        "GPT-2's gelu_new (for HF parity).",
        choices=ACTIVATIONS,
    )
    layer_norm_eps: float = option(1e-5, help="LayerNorm epsilon.", min=0.0)
    init_std: float = option(0.02, help="Std of the normal weight init; residual projections get std/sqrt(2·depth).",
                             min=0.0)

    def __post_init__(self) -> None:
        if self.embed_dim % self.heads:
            raise ValueError(f"embed_dim {self.embed_dim} must be divisible by heads {self.heads}")


@dataclass
class GPTConfig(TransformerConfig):
    """A causal decoder: each token attends to itself and earlier tokens."""


@dataclass
class BertConfig(TransformerConfig):
    """A bidirectional encoder: every token attends to every (kept) token."""


def _provides(causal: bool) -> dict[str, object]:
    return {
        "embed_dim": None,
        "heads": None,
        "causal": causal,
        "position_modes": list(POSITION_MODES),
        "max_positions": None,
        "supports_masking": True,
        "grid": 1,
    }


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="backbone",
        name="gpt",
        target="registry_llm.backbones.gpt:build",
        summary="Causal pre-LN transformer decoder (GPT-2 layout) over SDPA; any 1D position mode.",
        modality="text",
        tags=("decoder", "causal", "transformer"),
        config=GPTConfig,
        provides=_provides(True),
    ),
    ComponentSpec(
        kind="backbone",
        name="bert",
        target="registry_llm.backbones.bert:build",
        summary="Bidirectional pre-LN transformer encoder (BERT-style) over SDPA; any 1D position mode.",
        modality="text",
        tags=("encoder", "bidirectional", "transformer"),
        config=BertConfig,
        provides=_provides(False),
    ),
]
