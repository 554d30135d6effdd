"""What heads read: the tapped encoder layers of a batch of chips, with the patch grid to lay tokens out on."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["TokenFeatures"]


@dataclass
class TokenFeatures:
    """Encoder outputs ``layers`` (each ``(B, P + G·N, D)``, final-normed) of chips ``(H, W)`` pixels.

    ``prefix`` tokens (cls) come first; the ``N = gt·gh·gw`` patch tokens follow in (t, h, w) order, once per
    band group (``groups``). ``patch`` is the patch side in pixels.
    """

    layers: list[torch.Tensor]
    prefix: int
    grid: tuple[int, int, int]
    groups: int
    patch: int

    @property
    def pixels(self) -> tuple[int, int]:
        """The chip's (H, W): the patch grid times the patch size."""
        return self.grid[1] * self.patch, self.grid[2] * self.patch

    def tokens(self, layer: int = -1) -> torch.Tensor:
        """Patch tokens of one tapped layer (prefix dropped): ``(B, G·N, D)``."""
        return self.layers[layer][:, self.prefix:]

    def map(self, layer: int = -1) -> torch.Tensor:
        """One tapped layer as a feature map ``(B, D, gh, gw)``: band groups and frames averaged."""
        x = self.tokens(layer)
        b, _, d = x.shape
        gt, gh, gw = self.grid
        x = x.reshape(b, self.groups * gt, gh, gw, d).mean(dim=1)  # (B, gh, gw, D)
        return x.permute(0, 3, 1, 2).contiguous()

    def pooled(self, pool: str = "auto") -> torch.Tensor:
        """One vector per chip ``(B, D)`` from the last tapped layer: the cls token or the patch-token mean."""
        if pool == "auto":
            pool = "cls" if self.prefix else "mean"
        if pool == "cls":
            if not self.prefix:
                raise ValueError("pool 'cls' needs a backbone with a cls token (vit cls_token = true); use 'mean'")
            return self.layers[-1][:, 0]
        return self.tokens(-1).mean(dim=1)
