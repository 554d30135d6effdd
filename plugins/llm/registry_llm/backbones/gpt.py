"""``gpt``: the causal decoder, the shared ``registry_core.nn.Transformer`` with ``causal=True``."""

from __future__ import annotations

from registry_core.nn import Transformer
from registry_llm.backbones._stack import transformer_from
from registry_llm.backbones.specs import GPTConfig


def build(config: GPTConfig) -> Transformer:
    return transformer_from(config, causal=True)
