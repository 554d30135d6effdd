"""``ndvi``: the first ``spectral_index`` component."""

from __future__ import annotations

import torch

from registry_geoextras.specs import NDVIConfig

__all__ = ["NDVI", "build_ndvi"]


class NDVI:
    """``(..., 2)`` (red, nir) physical values -> ``(...)`` NDVI in [-1, 1] (0 where nir + red is ~0)."""

    name = "ndvi"
    bands = (("red",), ("nir", "nir08"))

    def __init__(self, eps: float = 1e-6) -> None:
        self.eps = eps

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        red, nir = values[..., 0], values[..., 1]
        total = nir + red
        dark = total.abs() <= self.eps
        ratio = (nir - red) / torch.where(dark, torch.ones_like(total), total)
        return torch.where(dark, torch.zeros_like(ratio), ratio).clamp(-1.0, 1.0)


def build_ndvi(config: NDVIConfig) -> NDVI:
    return NDVI(config.eps)
