"""``prithvi``: Prithvi MAE checkpoints (V1 100M, V2 EO-2.0) into the imagery ViT stack, band order checked.

The file is read and its layout checked when the component is built (a wrong layout names the missing
and unexpected keys then, not at the first batch); :meth:`PrithviWeights.load_into` copies it into the
pipeline's parts through the version's key table, with the patch projection's band slices fitted to the
data's bands; :meth:`PrithviWeights.encoder` builds the loaded ViT encoder on its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from registry_core.interfaces import ModelParts
from registry_core.nn import load_parts, part_tensors
from registry_gfm.weights._band_slices import band_sources, pick_channels, pick_rows
from registry_gfm.weights._prithvi_keys import METADATA_SCALES, TABLES
from registry_gfm.weights._prithvi_read import (
    IMG_SIZE,
    PrithviDims,
    check_layout,
    derive_dims,
    detect_version,
    read_checkpoint,
)
from registry_gfm.weights.specs import (
    PUBLISHED_BANDS,
    PUBLISHED_LAYER_NORM_EPS,
    PUBLISHED_STATS,
    PrithviConfig,
    checkpoint_files,
)

if TYPE_CHECKING:
    from registry_core.hub import Pulled
    from registry_gfm.encoder import ImageEncoder

__all__ = ["PUBLISHED_BANDS", "PUBLISHED_LAYER_NORM_EPS", "PUBLISHED_STATS", "PrithviWeights", "build",
           "prithvi_state_dict"]

def _check(what: str, obj: Any, want: Mapping[str, Any], path: Path) -> None:
    """``obj``'s attributes agree with the checkpoint's ``want`` (attributes it lacks are not checked)."""
    wrong = []
    for attr, value in want.items():
        have = getattr(obj, attr, value)
        same = abs(float(have) - float(value)) <= 1e-12 if isinstance(value, float) else have == value
        if not same:
            wrong.append(f"{attr}={have!r} (checkpoint: {value!r})")
    if wrong:
        raise ValueError(f"prithvi: the {what} does not match {path}: {'; '.join(wrong)}")


class PrithviWeights:
    """A local Prithvi checkpoint: ``meta``, ``fills``, ``files()``, ``load_into(parts)``, ``encoder()``, ``normalize``."""

    def __init__(self, config: PrithviConfig) -> None:
        self.config = config
        #: What was pulled from the hub (None for a local file): repo, commit and the files' sha256, for the lock.
        self.pulled: Pulled | None = None
        if config.hub is not None:
            if not config.files:
                raise ValueError(f"prithvi: name the checkpoint file of {config.hub} to pull: files = [\"...pt\"]")
            self.pulled = config.pull(config.files)
            self.path = self.pulled.path(checkpoint_files(config.files)[0])
        else:
            self.path = Path(str(config.path))
        tensors = read_checkpoint(self.path)
        self.version = detect_version(tensors, config.version, self.path)
        self.dims: PrithviDims = derive_dims(tensors, self.version, self.path, heads=config.heads,
                                             decoder_heads=config.decoder_heads)
        check_layout(tensors, self.dims, self.version, self.path)
        d = self.dims
        if d.patch_size != config.patch_size:
            raise ValueError(f"prithvi: {self.path} has {d.patch_size}-pixel patches but patch_size={config.patch_size}; "
                             f"set patch_size = {d.patch_size}")
        if d.channels != len(PUBLISHED_BANDS):
            raise ValueError(f"prithvi: {self.path} has {d.channels} input bands; Prithvi's are the six "
                             f"{list(PUBLISHED_BANDS)}")
        self.fills: tuple[str, ...] = tuple(config.fills.split("+"))
        if "decoder" in self.fills and d.decoder_embed_dim is None:
            raise ValueError(f"prithvi: fills='encoder+decoder' but {self.path} has no decoder (no decoder_embed.weight)")
        self._tensors = tensors
        #: LayerNorm epsilon of the code this version was trained with (encoder and decoder alike).
        self.layer_norm_eps = PUBLISHED_LAYER_NORM_EPS[self.version]
        mean, std = PUBLISHED_STATS[self.version]
        self.meta: dict[str, Any] = {
            "format": f"prithvi-{self.version}", "version": self.version, "bands": list(PUBLISHED_BANDS),
            "mean": list(mean), "std": list(std), "units": "HLS surface reflectance x 10000", "stats_scale": 1e-4,
            "layer_norm_eps": self.layer_norm_eps, "patch_size": d.patch_size, "frames": d.frames,
            "tubelet": d.tubelet, "img_size": IMG_SIZE,
            "embed_dim": d.embed_dim, "depth": d.depth, "heads": d.heads, "mlp_ratio": d.mlp_hidden / d.embed_dim,
            "decoder_embed_dim": d.decoder_embed_dim, "decoder_depth": d.decoder_depth, "decoder_heads": d.decoder_heads,
        }
        self.bands: tuple[str, ...] = tuple(config.data_bands) if config.data_bands is not None else PUBLISHED_BANDS
        with warnings.catch_warnings():  # checked here for its errors; load_into warns when it fits the bands
            warnings.simplefilter("ignore")
            self._sources = band_sources(self.bands, PUBLISHED_BANDS, config.band_map, config.allow_new_bands,
                                         str(self.path))

    def files(self) -> list[Path]:
        """The checkpoint file (and the other pulled files), whose hashes go into the lock."""
        return [f.path for f in self.pulled.files] if self.pulled is not None else [self.path]

    def input_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std per data band (a new band takes the average of the weights' bands)."""
        mean, std = (torch.tensor(v, dtype=torch.float32) for v in PUBLISHED_STATS[self.version])
        return pick_channels(mean, self._sources, 0), pick_channels(std, self._sources, 0)

    def normalize(self, chips: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """``(chips * scale - mean) / std`` per band (dim 1 of ``(B, C, T, H, W)`` or ``(B, C, H, W)``).

        The statistics are HLS reflectance x 10000: pass ``scale=10000`` for chips in reflectance (0..1).
        """
        if chips.dim() not in (4, 5) or chips.shape[1] != len(self.bands):
            raise ValueError(f"prithvi: chips of shape {tuple(chips.shape)} do not have the {len(self.bands)} "
                             f"bands {list(self.bands)} at dim 1 of (B, C, T, H, W) or (B, C, H, W)")
        mean, std = (v.to(chips.device, chips.dtype).view(1, -1, *([1] * (chips.dim() - 2))) for v in self.input_stats())
        return (chips * scale - mean) / std

    def _fitted(self, parts: ModelParts, fills: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """The checkpoint with band slices in data order, without what the parts do not take."""
        table = TABLES[self.version]
        enc, dec = ("encoder.", "decoder.") if self.version == "v2" else ("", "")
        ours = table.convert(self._tensors, "ours")
        theirs_of = {src: dest for dest, src in ours.source_of.items()}
        have = set(part_tensors(parts))
        out: dict[str, torch.Tensor] = {}
        lacking: list[str] = []
        for key, value in self._tensors.items():
            dest = theirs_of.get(key)
            if dest is not None and dest.startswith("objective.") and "decoder" not in fills:
                continue  # an encoder-only load drops the MAE decoder
            if key in METADATA_SCALES and dest not in have:
                lacking.append(key)
                continue
            out[key] = value
        if lacking:
            warnings.warn(f"prithvi: {self.path} has time / location encoding weights {lacking} but the model's "
                          "positional encoders take none; they are not loaded", stacklevel=3)
        channels = len(PUBLISHED_BANDS)
        band_sources(self.bands, PUBLISHED_BANDS, self.config.band_map, self.config.allow_new_bands, str(self.path))
        out[f"{enc}patch_embed.proj.weight"] = pick_channels(out[f"{enc}patch_embed.proj.weight"], self._sources, 1)
        for name in ("weight", "bias"):
            key = f"{dec}decoder_pred.{name}"
            if key in out:
                out[key] = pick_rows(out[key], self._sources, channels)
        return out

    def _check_parts(self, parts: ModelParts, fills: tuple[str, ...]) -> None:
        d = self.dims
        _check("backbone", parts.backbone, {"embed_dim": d.embed_dim, "depth": d.depth, "heads": d.heads, "causal": False,
                                            "num_prefix_tokens": 1, "eps": self.layer_norm_eps,
                                            "activation": "gelu"}, self.path)
        decoder = getattr(parts.objective, "decoder", None)
        if "decoder" in fills and decoder is not None:
            _check("MAE decoder", decoder, {"embed_dim": d.decoder_embed_dim, "depth": d.decoder_depth,
                                            "heads": d.decoder_heads, "eps": self.layer_norm_eps,
                                            "activation": "gelu"}, self.path)

    def load_into(self, parts: ModelParts) -> None:
        """Copy the checkpoint into ``parts`` (the groups of ``fills``); all checks run before any copy."""
        self._load(parts, self.fills)

    def _load(self, parts: ModelParts, fills: tuple[str, ...]) -> None:
        self._check_parts(parts, fills)
        load_parts(parts, self._fitted(parts, fills), fills=fills, table=TABLES[self.version],
                   source=f"prithvi {self.path}")

    def encoder(self) -> ImageEncoder:
        """The loaded ViT encoder (``registry_gfm.encoder.ImageEncoder``) for the data's bands, in eval mode."""
        from registry_core.nn import Transformer
        from registry_gfm.encoder import ImageEncoder
        from registry_gfm.positions.sincos import SinCos3D
        from registry_gfm.tokenizers.patch_tokenizer import PatchEmbed

        d = self.dims
        embed = PatchEmbed(len(self.bands), d.embed_dim, d.patch_size, tubelet=d.tubelet)
        positional = SinCos3D(d.embed_dim)
        backbone = Transformer(d.embed_dim, d.depth, d.heads, causal=False, mlp_ratio=d.mlp_hidden / d.embed_dim,
                               eps=self.layer_norm_eps, prefix_tokens=1)
        self._load(ModelParts(embed, positional, backbone), ("encoder",))
        return ImageEncoder(embed, positional, backbone).eval()


def prithvi_state_dict(parts: ModelParts, version: str = "v2", fills: tuple[str, ...] = ("encoder",)) -> dict[str, Any]:
    """``parts`` (groups ``fills``) in Prithvi's naming of ``version``; the fixed sin-cos tables are not written."""
    ours = {k: v.detach() for k, v in part_tensors(parts, fills).items()}
    converted = TABLES[version].convert(ours, "theirs")
    if converted.unmatched:
        raise ValueError(f"prithvi_state_dict: tensors with no Prithvi {version} counterpart: "
                         f"{', '.join(converted.unmatched)}")
    return converted.tensors


def build(config: PrithviConfig) -> PrithviWeights:
    return PrithviWeights(config)
