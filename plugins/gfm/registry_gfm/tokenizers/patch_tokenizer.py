"""``patch``: chips -> patch vectors with valid fractions (data side), and the linear patch projection (model side).

``encode`` turns a ``zarr-chips`` sample into tokens::

    patches        float32 (N, tubelet·p·p·C)   (p, q, c) order; NaN / invalid pixels are 0
    pixel_valid    bool    (N, tubelet·p·p)     which pixels of each patch are usable
    valid_fraction float32 (N_tokens,)          share of usable pixels per token
    positions      int64   (N_tokens, 3)        (t, h, w) patch coordinates
    time, center_lonlat, gsd, label             passed on when the sample has them

With ``band_groups`` every patch position yields one token per group (group-major order), so
``N_tokens = groups · N``; the model half splits each patch vector by group and adds a group embedding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from registry_gfm.tokenizers.patch_layout import as_5d, pad_to_multiple, patch_grid, patchify, token_grid_positions
from registry_gfm.tokenizers.specs import PatchConfig

__all__ = ["PatchEmbed", "PatchTokenizer", "build_patch", "group_indices"]

_PASSED_ON = ("time", "center_lonlat", "gsd", "label", "window")


def group_indices(bands: Sequence[str], groups: Sequence[Sequence[str]]) -> list[list[int]]:
    """Indices into ``bands`` of each group's bands, by band identity (``B04`` is ``red``); every band once."""
    from registry_gfm.bands import band_key

    def key(name: str) -> str:
        try:
            return band_key(name)
        except KeyError:
            return name.lower()

    where = {key(b): i for i, b in enumerate(bands)}
    out: list[list[int]] = []
    for g in groups:
        missing = [b for b in g if key(b) not in where]
        if missing:
            raise ValueError(f"tokenizer 'patch': band_groups names {missing}, which are not among the bands {list(bands)}")
        out.append([where[key(b)] for b in g])
    used = sorted(i for g in out for i in g)
    if used != list(range(len(bands))):
        left = [bands[i] for i in range(len(bands)) if i not in used]
        raise ValueError(f"tokenizer 'patch': band_groups {list(map(list, groups))} must use every band once; "
                         f"left out or repeated: {left or 'a repeated band'}")
    return out


class PatchEmbed(nn.Module):
    """Linear projection of patches to ``embed_dim``: a ``Conv3d`` with kernel = stride = (tubelet, p, p).

    Takes patch vectors ``(B, N, tubelet·p·p·C)`` (from ``encode``) or chips ``(B, C, T, H, W)`` /
    ``(B, C, H, W)``; both give ``(B, groups·N, D)``. With band groups there is one projection per group
    (``groups.{g}``) and a learned ``group_embed`` row added to each group's tokens (SatMAE).
    """

    def __init__(self, channels: int, embed_dim: int, patch: int, tubelet: int = 1,
                 band_groups: Sequence[Sequence[int]] | None = None, group_embed_dim: int | None = None) -> None:
        super().__init__()
        self.channels, self.embed_dim, self.patch, self.tubelet = channels, embed_dim, patch, tubelet
        self.band_groups = [list(g) for g in band_groups] if band_groups else None
        kernel = (tubelet, patch, patch)
        self.proj: nn.Conv3d | None = None
        if self.band_groups is None:
            self.proj = nn.Conv3d(channels, embed_dim, kernel_size=kernel, stride=kernel)
            _init_projection(self.proj)
        else:
            self.groups = nn.ModuleList(nn.Conv3d(len(g), embed_dim, kernel_size=kernel, stride=kernel)
                                        for g in self.band_groups)
            for conv in self.groups:
                assert isinstance(conv, nn.Conv3d)
                _init_projection(conv)
            width = group_embed_dim or embed_dim
            if width > embed_dim:
                raise ValueError(f"patch embedding: group_embed_dim {width} is wider than embed_dim {embed_dim}")
            #: ``(groups, group_embed_dim)``: added to the last ``group_embed_dim`` channels of a group's tokens.
            self.group_embed = nn.Parameter(torch.zeros(len(self.band_groups), width))
            nn.init.normal_(self.group_embed, std=0.02)

    @property
    def num_groups(self) -> int:
        return 1 if self.band_groups is None else len(self.band_groups)

    @property
    def patch_dim(self) -> int:
        """Length of one patch vector: tubelet·p·p·C."""
        return self.tubelet * self.patch * self.patch * self.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() in (4, 5):
            return self._from_chips(as_5d(x))
        if x.dim() != 3 or x.shape[-1] != self.patch_dim:
            raise ValueError(f"patch embedding expects patch vectors (B, N, {self.patch_dim}) or chips "
                             f"(B, {self.channels}, T, H, W), got shape {tuple(x.shape)}")
        if self.proj is not None:
            return _project(self.proj, x)
        assert self.band_groups is not None
        b, n, _ = x.shape
        pixels = x.reshape(b, n, -1, self.channels)  # (B, N, tubelet·p·p, C)
        out = [_project(conv, pixels[..., idx].reshape(b, n, -1)) + self._group_vector(g)
               for g, (idx, conv) in enumerate(zip(self.band_groups, self.groups))]
        return torch.cat(out, dim=1)

    def _from_chips(self, chips: torch.Tensor) -> torch.Tensor:
        if chips.shape[1] != self.channels:
            raise ValueError(f"patch embedding expects {self.channels} bands, got chips of shape {tuple(chips.shape)}")
        patch_grid(chips.shape[2:], self.patch, self.tubelet)  # a clear error for sizes that do not divide
        if self.proj is not None:
            out: torch.Tensor = self.proj(chips).flatten(2).transpose(1, 2)
            return out
        assert self.band_groups is not None
        parts = [conv(chips[:, idx]).flatten(2).transpose(1, 2) + self._group_vector(g)
                 for g, (idx, conv) in enumerate(zip(self.band_groups, self.groups))]
        return torch.cat(parts, dim=1)

    def _group_vector(self, g: int) -> torch.Tensor:
        """Group ``g``'s embedding over the full width: zeros, then its ``group_embed_dim`` channels (SatMAE)."""
        row = self.group_embed[g]
        return F.pad(row, (self.embed_dim - row.shape[0], 0)) if row.shape[0] < self.embed_dim else row


def _project(conv: nn.Module, patches: torch.Tensor) -> torch.Tensor:
    """A Conv3d patch projection applied to (t, p, q, c)-ordered patch vectors."""
    assert isinstance(conv, nn.Conv3d)
    return F.linear(patches, _as_linear(conv.weight), conv.bias)


def _as_linear(weight: torch.Tensor) -> torch.Tensor:
    """Conv3d weight ``(D, C, t, p, q)`` as a linear map over (t, p, q, c)-ordered patch vectors."""
    return weight.permute(0, 2, 3, 4, 1).reshape(weight.shape[0], -1)


def _init_projection(conv: nn.Conv3d) -> None:
    """Xavier-uniform over the flattened kernel (as MAE initialises its patch projection), zero bias."""
    w = conv.weight.data
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))
    assert conv.bias is not None
    nn.init.zeros_(conv.bias)


class PatchTokenizer:
    """The ``patch`` tokenizer: ``encode(sample)`` on the data side, ``embedding(dim)`` on the model side."""

    tokens = "continuous"

    def __init__(self, config: PatchConfig) -> None:
        self.config = config
        self.patch_size, self.tubelet = config.patch_size, config.tubelet
        self.bands: list[str] | None = list(config.bands) if config.bands is not None else None
        self._groups: list[list[int]] | None = None
        if self.bands is not None:
            self._resolve_groups()

    def _resolve_groups(self) -> None:
        if self.config.band_groups is not None and self.bands is not None:
            self._groups = group_indices(self.bands, self.config.band_groups)

    def attach_bands(self, bands: Sequence[str]) -> None:
        """Learn the band order from the data when the config left ``bands`` unset."""
        if self.bands is None:
            self.bands = list(bands)
            self._resolve_groups()

    @property
    def num_groups(self) -> int:
        return 1 if self.config.band_groups is None else len(self.config.band_groups)

    def tokens_per_sample(self) -> int | None:
        """Tokens one chip becomes (``groups · T/tubelet · (chip/p)²``), when the chip size is known."""
        cfg = self.config
        if cfg.chip_size is None:
            return None
        side = math.ceil(cfg.chip_size / cfg.patch_size)
        return self.num_groups * ((cfg.frames or cfg.tubelet) // cfg.tubelet) * side * side

    def _check_bands(self, n: int) -> None:
        if self.bands is not None and len(self.bands) != n:
            raise ValueError(f"tokenizer 'patch' expects {len(self.bands)} bands {self.bands}, the chip has {n}")

    def encode(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        """One ``zarr-chips`` sample (``pixels`` (T, C, H, W), ``valid`` (T, H, W)) -> patch tokens."""
        try:
            pixels = torch.as_tensor(sample["pixels"], dtype=torch.float32)
        except KeyError:
            raise KeyError(f"tokenizer 'patch' needs samples with 'pixels' (T, C, H, W); got keys {sorted(sample)}") from None
        if pixels.dim() == 3:
            pixels = pixels.unsqueeze(0)  # (C, H, W): one frame
        if pixels.dim() != 4:
            raise ValueError(f"tokenizer 'patch': 'pixels' must be (T, C, H, W), got shape {tuple(pixels.shape)}")
        self._check_bands(pixels.shape[1])
        valid = sample.get("valid")
        ok = torch.ones(pixels.shape[0], *pixels.shape[2:], dtype=torch.bool) if valid is None else \
            torch.as_tensor(valid, dtype=torch.bool).reshape(pixels.shape[0], *pixels.shape[2:])
        ok = ok & torch.isfinite(pixels).all(dim=1)  # a NaN in any band makes the pixel unusable
        chips = torch.nan_to_num(pixels, nan=0.0, posinf=0.0, neginf=0.0).mul(ok[:, None])
        chips = chips.permute(1, 0, 2, 3).unsqueeze(0)  # (1, C, T, H, W)
        mask = ok[None, None].float()  # (1, 1, T, H, W)
        if self.config.pad:
            h, w = chips.shape[-2:]
            chips = pad_to_multiple(chips, self.patch_size)
            mask = F.pad(mask, (0, chips.shape[-1] - w, 0, chips.shape[-2] - h))  # padded pixels are not valid
        grid = patch_grid(chips.shape[2:], self.patch_size, self.tubelet)
        patches = patchify(chips, self.patch_size, self.tubelet)[0]
        pixel_valid = patchify(mask, self.patch_size, self.tubelet)[0] > 0.5
        frac = pixel_valid.float().mean(dim=1)
        positions = token_grid_positions(grid)
        g = self.num_groups
        out: dict[str, Any] = {
            "patches": patches,
            "pixel_valid": pixel_valid,
            "valid_fraction": frac.repeat(g),
            "positions": positions.repeat(g, 1),
        }
        for key in _PASSED_ON:
            if key in sample:
                out[key] = torch.as_tensor(sample[key])
        return out

    def embedding(self, embed_dim: int) -> PatchEmbed:
        """A fresh patch projection for these bands, patch size and tubelet."""
        if self.bands is None:
            raise ValueError("tokenizer 'patch' does not know its bands: set `bands`, or compose it with a data "
                             "source that provides them")
        return PatchEmbed(len(self.bands), embed_dim, self.patch_size, self.tubelet, self._groups,
                          self.config.group_embed_dim)


def build_patch(config: PatchConfig) -> PatchTokenizer:
    return PatchTokenizer(config)
