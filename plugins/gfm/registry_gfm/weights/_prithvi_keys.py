"""Key tables of the Prithvi checkpoints (V1 flat MAE, V2 terratorch ``encoder.``/``decoder.``) and HF ViTMAE.

Our side is the imagery stack's naming (docs: gfm_contract): ``embed.proj`` (Conv3d patch projection),
``backbone`` (the shared Transformer with the cls token as ``prefix``), ``objective`` (the MAE decoder).
Prithvi's blocks are timm ``Block``s whose fused ``attn.qkv`` rows are q, k, v like ours; its fixed
sin-cos tables (``pos_embed``, ``decoder_pos_embed``) are recomputed by our positional encoders, so ignored.
"""

from __future__ import annotations

from typing import Final

from registry_core.nn import KeyRule, KeyTable

__all__ = ["HF_VITMAE", "HF_VITMAE_V5", "METADATA_SCALES", "PRITHVI_V1", "PRITHVI_V2", "TABLES"]

#: Per-block tensors: (our suffix, timm's suffix); weight and bias each.
_TIMM_BLOCK: Final = (("ln1", "norm1"), ("attn.qkv", "attn.qkv"), ("attn.proj", "attn.proj"),
                      ("ln2", "norm2"), ("mlp.fc", "mlp.fc1"), ("mlp.proj", "mlp.fc2"))


def _wb(ours: str, theirs: str) -> tuple[KeyRule, KeyRule]:
    """The weight and bias rules of one layer."""
    return KeyRule(f"{ours}.weight", f"{theirs}.weight"), KeyRule(f"{ours}.bias", f"{theirs}.bias")


def _blocks(ours: str, theirs: str) -> tuple[KeyRule, ...]:
    """Every tensor of timm blocks ``{theirs}.{i}`` as our ``{ours}.{i}``."""
    return tuple(r for a, b in _TIMM_BLOCK for r in _wb(f"{ours}.{{i}}.{a}", f"{theirs}.{{i}}.{b}"))


def _prithvi(enc: str, dec: str) -> tuple[KeyRule, ...]:
    """Prithvi's MAE with encoder keys under ``enc`` and decoder keys under ``dec`` (V1: both empty)."""
    return (
        *_wb("embed.proj", f"{enc}patch_embed.proj"),
        KeyRule("backbone.prefix", f"{enc}cls_token"),
        *_blocks("backbone.blocks", f"{enc}blocks"),
        *_wb("backbone.ln_f", f"{enc}norm"),
        *_wb("objective.decoder_embed", f"{dec}decoder_embed"),
        KeyRule("objective.mask_token", f"{dec}mask_token"),
        *_blocks("objective.decoder.blocks", f"{dec}decoder_blocks"),
        *_wb("objective.decoder.ln_f", f"{dec}decoder_norm"),
        *_wb("objective.decoder_pred", f"{dec}decoder_pred"),
    )


#: Prithvi-100M (V1, ``Prithvi_100M.pt`` / ``Prithvi_EO_V1_100M.pt``): the flat MAE naming of ``Prithvi.py``.
PRITHVI_V1: Final = KeyTable(
    name="prithvi-v1",
    rules=_prithvi("", ""),
    ignore=("pos_embed", "decoder_pos_embed"),  # fixed 3-D sin-cos tables: recomputed for any grid
)

#: Prithvi-EO-2.0 (V2, terratorch ``prithvi_mae.PrithviMAE``): ``encoder.`` / ``decoder.`` prefixes, and in the
#: TL models the learned weights of the time and location encodings (shape (1,) each).
PRITHVI_V2: Final = KeyTable(
    name="prithvi-v2",
    rules=(
        *_prithvi("encoder.", "decoder."),
        KeyRule("positional.time_scale", "encoder.temporal_embed_enc.scale"),
        KeyRule("positional.location_scale", "encoder.location_embed_enc.scale"),
        KeyRule("objective.decoder_positional.time_scale", "decoder.temporal_embed_dec.scale"),
        KeyRule("objective.decoder_positional.location_scale", "decoder.location_embed_dec.scale"),
    ),
    ignore=("encoder.pos_embed", "decoder.decoder_pos_embed"),
)

#: Their keys that only V2 TL checkpoints hold and a model without time / location encodings can do without.
METADATA_SCALES: Final = (
    "encoder.temporal_embed_enc.scale",
    "encoder.location_embed_enc.scale",
    "decoder.temporal_embed_dec.scale",
    "decoder.location_embed_dec.scale",
)


def _hf(layers: str, attn: tuple[str, str, str, str], mlp: tuple[str, str], root: str) -> tuple[KeyRule, ...]:
    """ViTMAE's naming for one transformers generation: layer paths, q/k/v/out names, MLP names."""
    q, k, v, o = attn

    def layer(ours: str, theirs: str) -> tuple[KeyRule, ...]:
        return (
            *(KeyRule(f"{ours}.{{i}}.attn.qkv.{p}", f"{theirs}.{{i}}.{n}.{p}", part=(j, 3))
              for p in ("weight", "bias") for j, n in enumerate((q, k, v))),
            *_wb(f"{ours}.{{i}}.attn.proj", f"{theirs}.{{i}}.{o}"),
            *_wb(f"{ours}.{{i}}.ln1", f"{theirs}.{{i}}.layernorm_before"),
            *_wb(f"{ours}.{{i}}.ln2", f"{theirs}.{{i}}.layernorm_after"),
            *_wb(f"{ours}.{{i}}.mlp.fc", f"{theirs}.{{i}}.{mlp[0]}"),
            *_wb(f"{ours}.{{i}}.mlp.proj", f"{theirs}.{{i}}.{mlp[1]}"),
        )

    return (
        KeyRule("embed.proj.weight", f"{root}embeddings.patch_embeddings.projection.weight", fold=2),
        KeyRule("embed.proj.bias", f"{root}embeddings.patch_embeddings.projection.bias"),
        KeyRule("backbone.prefix", f"{root}embeddings.cls_token"),
        *layer("backbone.blocks", layers),
        *_wb("backbone.ln_f", f"{root}layernorm"),
        *_wb("objective.decoder_embed", "decoder.decoder_embed"),
        KeyRule("objective.mask_token", "decoder.mask_token"),
        *layer("objective.decoder.blocks", "decoder.decoder_layers"),
        *_wb("objective.decoder.ln_f", "decoder.decoder_norm"),
        *_wb("objective.decoder_pred", "decoder.decoder_pred"),
    )


#: Hugging Face ``ViTMAEForPreTraining`` as its checkpoint files name it (``facebook/vit-mae-base``; written by
#: transformers 4, read by 4 and 5): a Conv2d patch projection (no time dim: ``fold``) and separate q, k, v.
HF_VITMAE: Final = KeyTable(
    name="hf-vitmae",
    rules=_hf("vit.encoder.layer", ("attention.attention.query", "attention.attention.key",
                                    "attention.attention.value", "attention.output.dense"),
              ("intermediate.dense", "output.dense"), "vit."),
    ignore=("vit.embeddings.position_embeddings", "decoder.decoder_pos_embed"),
)

#: The same model as transformers >= 5 names it in memory (``ViTMAEForPreTraining(...).state_dict()``; it renames
#: the file names above on load): ``vit.layers.{i}.attention.q_proj``, ``mlp.fc1`` and so on.
HF_VITMAE_V5: Final = KeyTable(
    name="hf-vitmae-v5",
    rules=_hf("vit.layers", ("attention.q_proj", "attention.k_proj", "attention.v_proj", "attention.o_proj"),
              ("mlp.fc1", "mlp.fc2"), "vit."),
    ignore=("vit.embeddings.position_embeddings", "decoder.decoder_pos_embed"),
)

#: Prithvi version -> its table.
TABLES: Final[dict[str, KeyTable]] = {"v1": PRITHVI_V1, "v2": PRITHVI_V2}
