"""``bert``: the bidirectional encoder, the shared ``registry_core.nn.Transformer`` with ``causal=False``."""

from __future__ import annotations

from registry_core.nn import Transformer
from registry_llm.backbones._stack import transformer_from
from registry_llm.backbones.specs import BertConfig


def build(config: BertConfig) -> Transformer:
    return transformer_from(config, causal=False)
