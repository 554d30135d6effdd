"""``patch`` (replaces ``gfm:patch``): the bundled patch tokenizer, plus patch norm and spectral-index channels.

The data side (``encode``) is registry-gfm's, unchanged. The model side adds two things:

- ``patch_norm``: a LayerNorm on each token after the projection (as Swin's ``patch_norm``);
- ``indices``: ``spectral_index`` components, each computed per pixel from the *physical* band values
  (the chips are standardised per band by the data source, so the data's mean / std undo that first),
  appended as channels before the projection. ``channels`` stays the band count: an MAE decoder still
  predicts the bands, and nothing else in a pipeline sees the extra channels.

Without indices the parameter names are the bundled ones (``proj.*``, plus ``norm.*`` with patch norm).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from registry_core import get_registry
from registry_geoextras.interfaces import SpectralIndex
from registry_geoextras.specs import GeoPatchConfig
from registry_gfm import PatchEmbed, PatchTokenizer, band_key

__all__ = ["GeoPatchEmbed", "GeoPatchTokenizer", "build", "index_inputs"]

#: What ``zarr-chips`` hands a tokenizer that asks: ``() -> {"bands", "mean", "std", ...}``.
Normalization = Callable[[], Mapping[str, Any]]


def _key(name: str) -> str:
    try:
        return band_key(name)
    except KeyError:
        return name.lower()


def index_inputs(index: SpectralIndex, bands: Sequence[str]) -> list[int]:
    """Positions in ``bands`` of the inputs ``index`` reads (band identity: ``B8A`` is ``nir08``)."""
    where = {_key(b): i for i, b in enumerate(bands)}
    out = []
    for accepted in index.bands:
        found = [where[_key(b)] for b in accepted if _key(b) in where]
        if not found:
            raise ValueError(f"spectral_index {index.name!r} needs one of the bands {list(accepted)}; the data has "
                             f"{list(bands)}")
        out.append(found[0])
    return out


class GeoPatchEmbed(PatchEmbed):
    """``PatchEmbed`` with optional index channels before the projection and a LayerNorm after it.

    ``mean`` / ``std`` ``(C,)`` turn the standardised inputs back into physical values for the indices;
    ``indices`` pairs each index with the band positions it reads (:func:`index_inputs`).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, channels: int, embed_dim: int, patch: int, tubelet: int = 1,
                 band_groups: Sequence[Sequence[int]] | None = None, *, patch_norm: bool = True,
                 indices: Sequence[tuple[SpectralIndex, list[int]]] = (),
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
        if indices and band_groups:
            raise ValueError("patch embedding: index channels cannot be combined with band groups")
        super().__init__(channels + len(indices), embed_dim, patch, tubelet, band_groups)
        self.channels = channels  # the bands: what objectives reconstruct and chips carry
        self.indices = list(indices)
        self.norm: nn.Module = nn.LayerNorm(embed_dim) if patch_norm else nn.Identity()
        if self.indices and (mean is None or std is None):
            raise ValueError("patch embedding: index channels need the bands' mean and std (physical values)")
        self.register_buffer("mean", torch.tensor(list(mean or [0.0] * channels), dtype=torch.float32),
                             persistent=False)
        self.register_buffer("std", torch.tensor(list(std or [1.0] * channels), dtype=torch.float32),
                             persistent=False)

    def _index_channels(self, bands_last: torch.Tensor) -> torch.Tensor:
        """``(..., C)`` standardised values -> ``(..., k)`` index channels of their physical values."""
        physical = bands_last * self.std.to(bands_last.dtype) + self.mean.to(bands_last.dtype)
        return torch.stack([index(physical[..., pos]) for index, pos in self.indices], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.indices:
            return self.norm(super().forward(x))
        assert self.proj is not None  # band groups are excluded with indices
        c = self.channels
        if x.dim() in (4, 5):  # chips (B, C, [T,] H, W)
            chips = x if x.dim() == 5 else x.unsqueeze(2)
            if chips.shape[1] != c:
                raise ValueError(f"patch embedding expects {c} bands, got chips of shape {tuple(x.shape)}")
            extra = self._index_channels(chips.movedim(1, -1)).movedim(-1, 1)  # (B, k, T, H, W)
            tokens = self.proj(torch.cat([chips, extra], dim=1)).flatten(2).transpose(1, 2)
            return self.norm(tokens)
        per_pixel = self.tubelet * self.patch * self.patch
        if x.dim() != 3 or x.shape[-1] != per_pixel * c:
            raise ValueError(f"patch embedding expects patch vectors (B, N, {per_pixel * c}) or chips "
                             f"(B, {c}, T, H, W), got shape {tuple(x.shape)}")
        pixels = x.unflatten(-1, (per_pixel, c))  # (B, N, t·p·p, C), MAE's (t, p, q, c) order
        vectors = torch.cat([pixels, self._index_channels(pixels)], dim=-1).flatten(-2)
        weight = self.proj.weight.permute(0, 2, 3, 4, 1).flatten(1)  # Conv3d (D, C+k, t, p, q) over (t, p, q, c)
        return self.norm(F.linear(vectors, weight, self.proj.bias))


class GeoPatchTokenizer(PatchTokenizer):
    """registry-gfm's ``PatchTokenizer`` whose ``embedding`` is a :class:`GeoPatchEmbed`."""

    config: GeoPatchConfig

    def __init__(self, config: GeoPatchConfig) -> None:
        super().__init__(config)
        registry = get_registry()
        self.indices: list[SpectralIndex] = [registry.build("spectral_index", name) for name in config.indices]
        self._normalization: Normalization | None = None

    def attach_normalization(self, normalization: Normalization) -> None:
        """Remember how to ask the data for its per-band mean / std (``zarr-chips`` offers it)."""
        self._normalization = normalization

    def _stats(self) -> tuple[list[float], list[float]]:
        """The data's mean / std in this tokenizer's band order (physical units)."""
        if self._normalization is None:
            raise ValueError(f"tokenizer 'patch' (geoextras): option 'indices' {self.config.indices} needs the "
                             "data's per-band mean / std to compute indices in physical units; compose it with a "
                             "data source that offers them (zarr-chips)")
        norm = self._normalization()
        assert self.bands is not None
        where = {_key(b): i for i, b in enumerate(norm["bands"])}
        missing = [b for b in self.bands if _key(b) not in where]
        if missing:
            raise ValueError(f"tokenizer 'patch' (geoextras): the data's normalisation has no statistics for bands "
                             f"{missing}; it covers {list(norm['bands'])}")
        pick = [where[_key(b)] for b in self.bands]
        return [float(norm["mean"][i]) for i in pick], [float(norm["std"][i]) for i in pick]

    def embedding(self, embed_dim: int) -> GeoPatchEmbed:
        bundled = super().embedding(embed_dim)  # checks the bands and resolves the band groups
        assert self.bands is not None
        indices = [(index, index_inputs(index, self.bands)) for index in self.indices]
        mean, std = self._stats() if indices else (None, None)
        return GeoPatchEmbed(bundled.channels, embed_dim, bundled.patch, bundled.tubelet, bundled.band_groups,
                             patch_norm=self.config.patch_norm, indices=indices, mean=mean, std=std)


def build(config: GeoPatchConfig) -> GeoPatchTokenizer:
    return GeoPatchTokenizer(config)
