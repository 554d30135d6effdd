"""``satmae``: SatMAE's group-channel checkpoints (Cong et al., NeurIPS 2022) into the imagery ViT stack.

SatMAE embeds each band group with its own patch projection and adds, to every token, its patch's 2-D sin-cos
position in the first ``D - c`` channels and its group's embedding in the last ``c`` (``channel_embed``); tokens
are group-major. Ours is the same model when the ``patch`` tokenizer has SatMAE's ``band_groups`` and
``group_embed_dim = c`` and ``sincos-2d`` has ``table_dim = D - c`` (:func:`satmae_options` gives them). The
finetuned ``GroupChannelsVisionTransformer`` also adds ``cat(pos_embed[0], channel_cls_embed)`` to its cls
token, folded into ours here. Only the encoder is loaded; the MAE decoder is skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import torch

from registry_core.interfaces import ModelParts
from registry_core.nn import KeyRule, KeyTable, load_parts
from registry_gfm.weights._prithvi_read import read_checkpoint
from registry_gfm.weights.specs import (
    SATMAE_BANDS,
    SATMAE_GROUPS,
    SATMAE_LAYER_NORM_EPS,
    SatMAEConfig,
    checkpoint_files,
)

if TYPE_CHECKING:
    from registry_core.hub import Pulled
    from registry_gfm.encoder import ImageEncoder

__all__ = ["SATMAE_KEYS", "SatMAEWeights", "build", "satmae_options"]

_BLOCK: Final = (("ln1", "norm1"), ("attn.qkv", "attn.qkv"), ("attn.proj", "attn.proj"), ("ln2", "norm2"),
                 ("mlp.fc", "mlp.fc1"), ("mlp.proj", "mlp.fc2"))
#: SatMAE's encoder names <-> ours (its group patch projections are Conv2d: our Conv3d's time kernel of 1 folded).
SATMAE_KEYS: Final = KeyTable(
    name="satmae",
    rules=(
        KeyRule("embed.groups.{g}.weight", "patch_embed.{g}.proj.weight", fold=2),
        KeyRule("embed.groups.{g}.bias", "patch_embed.{g}.proj.bias"),
        KeyRule("embed.group_embed", "channel_embed.0"),
        KeyRule("backbone.prefix", "cls_token"),
        KeyRule("backbone.ln_f.weight", "norm.weight"),
        KeyRule("backbone.ln_f.bias", "norm.bias"),
        *(KeyRule(f"backbone.blocks.{{i}}.{ours}.{kind}", f"blocks.{{i}}.{theirs}.{kind}")
          for ours, theirs in _BLOCK for kind in ("weight", "bias")),
    ),
    ignore=("decoder_*", "mask_token", "head.*", "pos_embed", "channel_embed", "channel_cls_embed"),
)


def _dims(tensors: dict[str, torch.Tensor], path: Path, heads: int | None) -> dict[str, Any]:
    """Width, depth, heads, groups, patch and channel-embedding width, read from the tensors' shapes."""
    for key in ("cls_token", "pos_embed", "channel_embed", "patch_embed.0.proj.weight", "norm.weight"):
        if key not in tensors:
            raise ValueError(f"satmae: {path} lacks {key!r}; expected a SatMAE group-channel checkpoint "
                             "(models_mae_group_channels / models_vit_group_channels)")
    width = int(tensors["cls_token"].shape[-1])
    groups = int(tensors["channel_embed"].shape[1])
    depth = len({k.split(".")[1] for k in tensors if k.startswith("blocks.")})
    heads = heads or max(width // 64, 1)
    if width % heads:
        raise ValueError(f"satmae: {path} is {width} wide, not divisible by heads={heads}; set heads")
    return {"embed_dim": width, "depth": depth, "heads": heads, "groups": groups,
            "channel_embed": int(tensors["channel_embed"].shape[-1]),
            "patch_size": int(tensors["patch_embed.0.proj.weight"].shape[-1]),
            "grid": round((tensors["pos_embed"].shape[1] - 1) ** 0.5),
            "group_bands": tuple(int(tensors[f"patch_embed.{g}.proj.weight"].shape[1]) for g in range(groups))}


def satmae_options(dims: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Slot -> options of the pipeline that is SatMAE's encoder: patch groups, the table width, the ViT."""
    return {
        "tokenizer": {"use": "patch", "patch_size": dims["patch_size"],
                      "band_groups": [list(g) for g in SATMAE_GROUPS], "group_embed_dim": dims["channel_embed"]},
        "positional": {"use": "sincos-2d", "table_dim": dims["embed_dim"] - dims["channel_embed"]},
        "backbone": {"use": "vit", "embed_dim": dims["embed_dim"], "depth": dims["depth"], "heads": dims["heads"],
                     "layer_norm_eps": SATMAE_LAYER_NORM_EPS},
    }


class SatMAEWeights:
    """A SatMAE group-channel checkpoint: ``dims``, ``meta``, ``files()``, ``load_into(parts)``, ``encoder()``."""

    fills: tuple[str, ...] = ("encoder",)

    def __init__(self, config: SatMAEConfig) -> None:
        self.config = config
        #: What was pulled from the hub (None for a local file): repo, commit and the files' sha256, for the lock.
        self.pulled: Pulled | None = None
        if config.hub is not None:
            names = checkpoint_files(config.files or ())
            if len(names) != 1:
                raise ValueError(f"satmae: name exactly one checkpoint of {config.hub} to pull: files = [\"...pth\"]")
            self.pulled = config.pull(config.files or ())
            self.path = self.pulled.path(names[0])
        else:
            self.path = Path(str(config.path))
        self._tensors = read_checkpoint(self.path, "satmae", safe=(argparse.Namespace,))
        self.dims = _dims(self._tensors, self.path, config.heads)
        d = self.dims
        if d["patch_size"] != config.patch_size:
            raise ValueError(f"satmae: {self.path} has {d['patch_size']}-pixel patches but patch_size="
                             f"{config.patch_size}; set patch_size = {d['patch_size']}")
        if d["group_bands"] != tuple(len(g) for g in SATMAE_GROUPS):
            raise ValueError(f"satmae: {self.path} has band groups of {list(d['group_bands'])} bands; SatMAE's are "
                             f"{[list(g) for g in SATMAE_GROUPS]}")
        if config.data_bands is not None and tuple(config.data_bands) != SATMAE_BANDS:
            raise ValueError(f"satmae: the data's bands {list(config.data_bands)} are not SatMAE's, in its order: "
                             f"{list(SATMAE_BANDS)}")
        self._check_positions()
        self.layer_norm_eps = SATMAE_LAYER_NORM_EPS
        self.meta: dict[str, Any] = {"format": "satmae-group-channels", "bands": list(SATMAE_BANDS),
                                     "band_groups": [list(g) for g in SATMAE_GROUPS], **d}

    def _check_positions(self) -> None:
        """SatMAE's ``pos_embed`` must be the fixed 2-D sin-cos table we compute (a finetuned ViT may train it)."""
        from registry_gfm.positions.sincos import sincos_2d_table

        d = self.dims
        theirs = self._tensors["pos_embed"][0].float()
        ours = sincos_2d_table(d["grid"], d["grid"], d["embed_dim"] - d["channel_embed"], cls_token=True)
        difference = (theirs[1:] - ours[1:]).abs().max().item()
        if difference > 1e-4:
            raise ValueError(f"satmae: {self.path} has a pos_embed {difference:.3g} away from the fixed 2-D sin-cos "
                             "table (trained while finetuning?); only the fixed table loads")

    def files(self) -> list[Path]:
        """The checkpoint (and the other pulled files), whose hashes go into the lock."""
        return [f.path for f in self.pulled.files] if self.pulled is not None else [self.path]

    def _ours(self) -> dict[str, torch.Tensor]:
        """The encoder's tensors in SatMAE's naming, the cls token with what the finetuned ViT adds to it."""
        tensors = dict(self._tensors)
        d = self.dims
        cls = tensors["cls_token"].clone()
        extra = tensors.get("channel_cls_embed")
        if extra is not None:  # GroupChannelsVisionTransformer: cls + cat(pos_embed[0], channel_cls_embed)
            cls = cls + torch.cat([tensors["pos_embed"][:, :1], extra], dim=-1)
        tensors["cls_token"] = cls
        tensors["channel_embed.0"] = tensors["channel_embed"][0]
        if tensors["channel_embed.0"].shape != (d["groups"], d["channel_embed"]):
            raise ValueError(f"satmae: {self.path} channel_embed has shape {tuple(tensors['channel_embed'].shape)}")
        return tensors

    def _check_parts(self, parts: ModelParts) -> None:
        d = self.dims
        embed, positional, backbone = parts.embed, parts.positional, parts.backbone
        wrong = []
        group_embed = getattr(embed, "group_embed", None)
        if getattr(embed, "num_groups", 1) != d["groups"] or group_embed is None:
            wrong.append(f"the tokenizer has {getattr(embed, 'num_groups', 1)} band group(s), the checkpoint "
                         f"{d['groups']} (band_groups = {[list(g) for g in SATMAE_GROUPS]})")
        elif group_embed.shape[-1] != d["channel_embed"]:
            wrong.append(f"group_embed_dim={group_embed.shape[-1]} (checkpoint: {d['channel_embed']})")
        if getattr(positional, "table_dim", None) != d["embed_dim"] - d["channel_embed"]:
            wrong.append(f"the positions' table_dim={getattr(positional, 'table_dim', None)} (checkpoint: "
                         f"{d['embed_dim'] - d['channel_embed']})")
        for attr in ("embed_dim", "depth", "heads"):
            if getattr(backbone, attr, None) != d[attr]:
                wrong.append(f"{attr}={getattr(backbone, attr, None)} (checkpoint: {d[attr]})")
        if getattr(backbone, "num_prefix_tokens", 0) != 1:
            wrong.append("the backbone has no cls token (SatMAE has one)")
        if abs(float(getattr(backbone, "eps", SATMAE_LAYER_NORM_EPS)) - SATMAE_LAYER_NORM_EPS) > 1e-12:
            wrong.append(f"layer_norm_eps={getattr(backbone, 'eps', None)} (SatMAE: {SATMAE_LAYER_NORM_EPS})")
        if wrong:
            raise ValueError(f"satmae: the model does not match {self.path}: {'; '.join(wrong)}; build it with "
                             "registry_gfm.weights.satmae.satmae_options(weights.dims)")

    def load_into(self, parts: ModelParts) -> None:
        """Copy the encoder into ``parts`` (patch groups, group embedding, cls token, blocks); checks run first."""
        self._check_parts(parts)
        load_parts(parts, self._ours(), fills=self.fills, table=SATMAE_KEYS, source=f"satmae {self.path}")

    def encoder(self) -> ImageEncoder:
        """The loaded encoder on its own (``registry_gfm.encoder.ImageEncoder``), in eval mode."""
        from registry_core.nn import Transformer
        from registry_gfm.encoder import ImageEncoder
        from registry_gfm.positions.sincos import SinCos2D
        from registry_gfm.positions.specs import MetadataOptions
        from registry_gfm.tokenizers.patch_tokenizer import PatchEmbed, group_indices

        d = self.dims
        embed = PatchEmbed(len(SATMAE_BANDS), d["embed_dim"], d["patch_size"],
                           band_groups=group_indices(SATMAE_BANDS, SATMAE_GROUPS), group_embed_dim=d["channel_embed"])
        positional = SinCos2D(d["embed_dim"], MetadataOptions(table_dim=d["embed_dim"] - d["channel_embed"]))
        backbone = Transformer(d["embed_dim"], d["depth"], d["heads"], causal=False, eps=SATMAE_LAYER_NORM_EPS,
                               prefix_tokens=1)
        parts = ModelParts(embed, positional, backbone)
        self.load_into(parts)
        return ImageEncoder(embed, positional, backbone).eval()


def build(config: SatMAEConfig) -> SatMAEWeights:
    return SatMAEWeights(config)
