"""Config schemas and specs of the text backbones: ``gpt`` (causal) and ``bert`` (bidirectional)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, TransformerOptions, option
from registry_core.choices import POSITION_MODES


@dataclass
class TransformerConfig(TransformerOptions):
    """Options shared by both text backbones: the shared transformer's, a context length and biases."""

    layer_norm_eps: float = option(1e-5, help="LayerNorm epsilon (GPT-2, BERT: 1e-5)", min=0.0)
    max_positions: int = option(1024, help="longest sequence (context length) the model accepts", min=1)
    bias: bool = option(True, help="biases in linear layers and LayerNorms (GPT-2: true)")


@dataclass
class GPTConfig(TransformerConfig):
    """A causal decoder: each token attends to itself and earlier tokens."""


@dataclass
class BertConfig(TransformerConfig):
    """A bidirectional encoder: every token attends to every (kept) token."""

    type_vocab_size: int = option(0, help="token types (BERT's segments A / B: 2) whose embedding is added to the "
                                  "input; a batch's `token_type_ids` picks them (type 0 without); 0: none", min=0)
    pooler: bool = option(False, help="BERT's pooler: a dense layer (tanh) over the first token, the sentence "
                          "vector of classification heads (`registry_llm.backbones.bert.pooled`)")


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
        summary="Causal transformer decoder (GPT-2 layout; pre-LN, or post-LN) over SDPA; any 1D position mode.",
        modality="text",
        tags=("decoder", "causal", "transformer"),
        config=GPTConfig,
        provides=_provides(True),
    ),
    ComponentSpec(
        kind="backbone",
        name="bert",
        target="registry_llm.backbones.bert:build",
        summary="Bidirectional transformer encoder (BERT: post-LN with token types; or pre-LN) over SDPA; any 1D "
        "position mode.",
        modality="text",
        tags=("encoder", "bidirectional", "transformer"),
        config=BertConfig,
        provides=_provides(False),
    ),
]
