"""The shared transformer of both stacks (imports torch; ``registry_core`` itself never imports this).

One block implementation serves the GPT decoder, the BERT-style encoder and the ViT encoder: attention
is ``F.scaled_dot_product_attention`` taking additive, rotary or attention-bias positions, an optional
causal mask, a token keep-mask, and an optional preallocated KV cache.
"""

from __future__ import annotations

from registry_core.nn.attention import Rotary, SelfAttention
from registry_core.nn.block import Block
from registry_core.nn.key_table import Converted, KeyRule, KeyTable
from registry_core.nn.kv_cache import KVCache
from registry_core.nn.load_parts import CheckpointError, LoadReport, load_parts, part_tensors
from registry_core.nn.masks import attention_mask
from registry_core.nn.mlp import ACTIVATIONS, MLP
from registry_core.nn.transformer import POSITION_MODES, Transformer, init_weights

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "POSITION_MODES",
    "Block",
    "CheckpointError",
    "Converted",
    "KVCache",
    "KeyRule",
    "KeyTable",
    "LoadReport",
    "Rotary",
    "SelfAttention",
    "Transformer",
    "attention_mask",
    "init_weights",
    "load_parts",
    "part_tensors",
]
