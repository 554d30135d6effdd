"""The shared transformer of both stacks (imports torch; ``registry_core`` itself never imports this).

One block implementation serves the GPT decoder, the BERT-style encoder and the ViT encoder: attention
is ``F.scaled_dot_product_attention`` taking additive, rotary or attention-bias positions, an optional
causal mask, a token keep-mask, and an optional preallocated KV cache; ``keep_index`` gathers the kept
tokens before the blocks. The position math of every encoder (1-D and N-d sin-cos, rotary, the checks
of position ids) lives here too, over N-d position ids.
"""

from __future__ import annotations

from registry_core.choices import ACTIVATIONS, POSITION_MODES
from registry_core.nn.attention import Rotary, SelfAttention
from registry_core.nn.attention_maps import attention_probabilities, record_attention
from registry_core.nn.block import NORMS, TORCH_ENCODER_LAYER_KEYS, Block
from registry_core.nn.gather import check_token_index, gather_tokens
from registry_core.nn.key_table import Converted, KeyRule, KeyTable
from registry_core.nn.kv_cache import KVCache, SlotKVCache
from registry_core.nn.load_parts import (
    CheckpointError,
    LoadReport,
    key_listing,
    load_parts,
    load_run_tensors,
    part_tensors,
)
from registry_core.nn.masks import attention_mask
from registry_core.nn.mlp import MLP
from registry_core.nn.modes import eval_mode
from registry_core.nn.positions import check_range, grid_positions, lookup, span, token_axis, token_positions
from registry_core.nn.rotary import (
    apply_rotary,
    axial_rotary,
    check_convention,
    rotary_angles,
    rotary_table,
    rotate_half,
    rotate_pairs,
)
from registry_core.nn.sincos import sincos_angles, sincos_encoding, sinusoid_table
from registry_core.nn.transformer import PREFIX_POSITIONS, Transformer, init_weights

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "NORMS",
    "POSITION_MODES",
    "PREFIX_POSITIONS",
    "TORCH_ENCODER_LAYER_KEYS",
    "Block",
    "CheckpointError",
    "Converted",
    "KVCache",
    "KeyRule",
    "KeyTable",
    "LoadReport",
    "Rotary",
    "SelfAttention",
    "SlotKVCache",
    "Transformer",
    "apply_rotary",
    "attention_mask",
    "attention_probabilities",
    "axial_rotary",
    "check_convention",
    "check_range",
    "check_token_index",
    "eval_mode",
    "gather_tokens",
    "grid_positions",
    "init_weights",
    "key_listing",
    "load_parts",
    "load_run_tensors",
    "lookup",
    "part_tensors",
    "record_attention",
    "rotary_angles",
    "rotary_table",
    "rotate_half",
    "rotate_pairs",
    "sincos_angles",
    "sincos_encoding",
    "sinusoid_table",
    "span",
    "token_axis",
    "token_positions",
]
