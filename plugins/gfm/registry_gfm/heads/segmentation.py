"""``segmentation``: the patch-token grid back to a class per pixel (progressive upsampling or a light FPN).

``progressive`` (SETR's PUP) lifts the last layer's ``(gh, gw)`` grid by 2x transposed-conv stages up to
the chip's pixels. ``fpn`` is a light UPerNet: four encoder layers become a pyramid at 4x, 2x, 1x and 0.5x
the patch grid (ViTDet's simple feature pyramid, after a 1x1 reduction to ``channels``), fused top-down, concatenated and classified per pixel.
Group norms, not batch norms: a pixel's class never depends on the other chips of its batch, which tiled
inference needs to be bit-identical for any batch size.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from registry_core.interfaces import ModelParts
from registry_gfm.heads.features import TokenFeatures
from registry_gfm.heads.specs import SegmentationHeadConfig

__all__ = ["SegmentationHead", "build", "default_taps"]


def default_taps(decoder: str, depth: int) -> list[int]:
    """The blocks a decoder reads by default: the last, or four evenly spaced ending at the last."""
    if decoder == "progressive":
        return [depth - 1]
    return [max(0, depth * (i + 1) // 4 - 1) for i in range(4)]  # depth 12: 2, 5, 8, 11


def _norm_act(channels: int) -> list[nn.Module]:
    return [nn.GroupNorm(math.gcd(8, channels), channels), nn.GELU()]


def _conv(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), *_norm_act(cout))


def _up2(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(channels, channels, 2, stride=2), *_norm_act(channels))


class SegmentationHead(nn.Module):
    """``head(features) -> (B, num_classes, H, W)`` logits at the chip's pixels; sized in ``bind``."""

    task = "segmentation"

    def __init__(self, config: SegmentationHeadConfig) -> None:
        super().__init__()
        self.config = config
        self.taps: list[int] = list(config.layers or [])

    def bind(self, parts: ModelParts) -> None:
        cfg = self.config
        if cfg.num_classes is None:
            raise ValueError("head 'segmentation' needs num_classes (set it, or give the data source labels)")
        dim = cfg.embed_dim or int(parts.backbone.embed_dim)
        depth = int(getattr(parts.backbone, "depth", 1))
        patch = int(getattr(parts.embed, "patch", 1))
        if not self.taps:
            self.taps = default_taps(cfg.decoder, depth)
        for t in self.taps:
            if not -depth <= t < depth:
                raise ValueError(f"head 'segmentation': layer {t} is not a block of the {depth}-block backbone")
        c = cfg.channels
        if cfg.decoder == "progressive":
            stages = max(0, math.ceil(math.log2(patch)))
            self.stem = _conv(dim, c, 1)
            self.up = nn.Sequential(*(_up2(c) for _ in range(stages)))
        else:
            # per level: a 1x1 lateral down to c channels, then resampled to 4x, 2x, 1x, 0.5x the patch grid
            self.lateral = nn.ModuleList(_conv(dim, c, 1) for _ in range(4))
            self.levels = nn.ModuleList([
                nn.Sequential(_up2(c), _up2(c)),
                _up2(c),
                nn.Identity(),
                nn.MaxPool2d(2, ceil_mode=True),
            ])
            self.smooth = nn.ModuleList(_conv(c, c) for _ in range(4))
            self.fuse = _conv(4 * c, c)
        self.drop = nn.Dropout2d(cfg.dropout)
        self.classifier = nn.Conv2d(c, cfg.num_classes, 1)

    def forward(self, features: TokenFeatures) -> torch.Tensor:
        size = features.pixels
        if self.config.decoder == "progressive":
            x = self.up(self.stem(features.map(-1)))
        else:
            maps = [level(lat(features.map(i))) for i, (level, lat) in enumerate(zip(self.levels, self.lateral))]
            for i in (2, 1, 0):  # top-down: coarser levels refine finer ones
                maps[i] = maps[i] + F.interpolate(maps[i + 1], size=maps[i].shape[-2:], mode="bilinear",
                                                  align_corners=False)
            maps = [s(m) for s, m in zip(self.smooth, maps)]
            finest = maps[0].shape[-2:]
            x = self.fuse(torch.cat([maps[0], *(F.interpolate(m, size=finest, mode="bilinear", align_corners=False)
                                                for m in maps[1:])], dim=1))
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        out: torch.Tensor = self.classifier(self.drop(x))
        return out


def build(config: SegmentationHeadConfig) -> SegmentationHead:
    return SegmentationHead(config)
