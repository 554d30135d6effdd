"""``mae``: masked-autoencoder pretraining (He et al. 2022) that ignores unusable pixels.

Each sample's tokens are ranked by a noise vector (``batch["noise"]`` when given, for tests and parity
checks; else drawn from the objective's ``generator`` or torch's RNG); the lowest ``1 - mask_ratio`` are
kept and only they run through the encoder. A light decoder sees the encoded tokens plus a shared mask
token at every dropped place, each with its own sin-cos position, and predicts the patch pixels. The loss
is the mean squared error over masked patches only, counting only valid pixels (not cloud, shadow, nodata
or NaN: the tokenizer's ``pixel_valid``), so clouds are never a target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from registry_core.interfaces import ModelParts
from registry_core.nn import Transformer
from registry_gfm.backbones.specs import DEFAULT_LAYER_NORM_EPS
from registry_gfm.objectives.specs import MAEConfig
from registry_gfm.positions.placement import placement_of
from registry_gfm.positions.sincos import SinCos2D

__all__ = ["MAEObjective", "build", "random_masking"]


def random_masking(noise: torch.Tensor, mask_ratio: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ids_keep (B, K), mask (B, L) 1 = dropped, ids_restore (B, L))``: keep the K lowest-noise tokens."""
    b, length = noise.shape
    keep = int(length * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones(b, length, device=noise.device)
    mask[:, :keep] = 0
    return ids_shuffle[:, :keep], torch.gather(mask, 1, ids_restore), ids_restore


class MAEObjective(nn.Module):
    """``objective(parts, batch) -> (loss, metrics)`` over ``patch`` tokens; see the module docstring.

    The decoder (``decoder_embed``, ``mask_token``, ``decoder``, ``decoder_positional``, ``decoder_pred``)
    is made in ``bind``, sized from the bound patch embedding (bands, patch size, tubelet, band groups).
    """

    #: Counts the trainer sums; the loss is a mean over ``masked_pixels`` (valid pixel values of masked tokens),
    #: so accumulation, ranks and validation weigh each batch by it: the per-pixel mean of one big batch.
    count_metrics = ("masked_tokens", "masked_pixels")
    loss_weight = "masked_pixels"

    def __init__(self, config: MAEConfig) -> None:
        super().__init__()
        self.config = config
        self.generator: torch.Generator | None = None
        #: Seed of the masks drawn in eval mode (validation, evaluators), independent of training's RNG.
        self.eval_seed = 0

    def bind(self, parts: ModelParts) -> None:
        cfg, embed = self.config, parts.embed
        dim = cfg.embed_dim or int(parts.backbone.embed_dim)
        for attr in ("patch", "tubelet", "channels"):
            if not hasattr(embed, attr):
                raise TypeError(f"objective 'mae' needs a patch embedding (tokenizer 'patch'); got {type(embed).__name__}")
        self.patch, self.tubelet, self.channels = int(embed.patch), int(embed.tubelet), int(embed.channels)
        self.band_groups: list[list[int]] | None = getattr(embed, "band_groups", None)
        self.decoder_embed = nn.Linear(dim, cfg.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.decoder = Transformer(cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads, causal=False,
                                   mlp_ratio=cfg.mlp_ratio,
                                   eps=DEFAULT_LAYER_NORM_EPS if cfg.layer_norm_eps is None else cfg.layer_norm_eps)
        resized = getattr(parts.positional, "resized", None)
        self.decoder_positional = resized(cfg.decoder_dim) if callable(resized) else SinCos2D(cfg.decoder_dim)
        pixels = self.tubelet * self.patch * self.patch
        # The output layer: pixels x bands; with band groups one per group (``decoder_pred.{g}``).
        self.decoder_pred: nn.Module = (
            nn.Linear(cfg.decoder_dim, pixels * self.channels) if self.band_groups is None
            else nn.ModuleList(nn.Linear(cfg.decoder_dim, pixels * len(g)) for g in self.band_groups)
        )

    # -- the forward pass ---------------------------------------------------------------------

    def predict(self, parts: ModelParts, batch: Mapping[str, Any], noise: torch.Tensor | None = None
                ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Raw decoder output per band group, each ``(B, N, pixels·C_g)`` (in the loss's units: per-patch
        normalised with ``norm_pix_loss``), and the mask ``(B, groups·N)``, 1 where a token was dropped."""
        if not hasattr(self, "decoder"):
            raise RuntimeError("objective 'mae' is not bound; call objective.bind(parts) first")
        where = placement_of(batch)
        noise = batch.get("noise") if noise is None else noise
        x = parts.embed(batch["patches"])  # (B, L, D), L = groups · N
        b, length, _ = x.shape
        if noise is None:
            # Evaluation masks are fixed (seeded afresh each pass), so validation losses compare across steps.
            gen = self.generator if self.training else torch.Generator(device=x.device).manual_seed(self.eval_seed)
            noise = torch.rand(b, length, generator=gen, device=x.device)
        if tuple(noise.shape) != (b, length):
            raise ValueError(f"objective 'mae': noise must be (B, L) = ({b}, {length}), got {tuple(noise.shape)}")
        ids_keep, mask, ids_restore = random_masking(noise.to(x.device), self.config.mask_ratio)
        latent = parts.backbone(x, parts.positional, where, keep_index=ids_keep)
        prefix = int(getattr(parts.backbone, "num_prefix_tokens", 0))
        y = self.decoder_embed(latent)
        dropped = self.mask_token.to(y.dtype).expand(b, length - ids_keep.shape[1], -1)
        tokens = torch.cat([y[:, prefix:], dropped], dim=1)
        tokens = torch.gather(tokens, 1, ids_restore.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        tokens = self.decoder_positional(tokens, where)
        y = self.decoder(torch.cat([y[:, :prefix], tokens], dim=1))[:, prefix:]
        heads = list(self.decoder_pred) if isinstance(self.decoder_pred, nn.ModuleList) else [self.decoder_pred]
        n = length // len(heads)
        return [head(y[:, g * n:(g + 1) * n]) for g, head in enumerate(heads)], mask

    def _targets(self, batch: Mapping[str, Any]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(target, valid)`` per band group: ``(B, N, pixels·C_g)`` patch pixels and their usability."""
        patches = batch["patches"]
        b, n, size = patches.shape
        pixels = size // self.channels
        valid = batch.get("pixel_valid")
        valid = torch.ones(b, n, pixels, dtype=torch.bool, device=patches.device) if valid is None else valid.bool()
        if self.band_groups is None:
            return [(patches, valid.unsqueeze(-1).expand(-1, -1, -1, self.channels).reshape(b, n, size))]
        per_pixel = patches.reshape(b, n, pixels, self.channels)
        return [(per_pixel[..., g].reshape(b, n, -1), valid.unsqueeze(-1).expand(-1, -1, -1, len(g)).reshape(b, n, -1))
                for g in self.band_groups]

    def _token_ok(self, batch: Mapping[str, Any], mask: torch.Tensor) -> torch.Tensor:
        frac = batch.get("valid_fraction")
        if frac is None:
            return mask
        return mask * (frac.to(mask.device) > self.config.min_valid).to(mask.dtype)

    @staticmethod
    def _normalised(target: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each patch minus its mean, over its std (unbiased, +1e-6 as MAE), both over its valid pixels."""
        w = valid.to(target.dtype)
        n = w.sum(-1, keepdim=True)
        mean = (w * target).sum(-1, keepdim=True) / n.clamp(min=1)
        var = (w * (target - mean) ** 2).sum(-1, keepdim=True) / (n - 1).clamp(min=1)
        std = (var + 1e-6).sqrt()
        return (target - mean) / std, mean, std

    def forward(self, parts: ModelParts, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        preds, mask = self.predict(parts, batch, batch.get("noise"))
        ok = self._token_ok(batch, mask)
        n_groups = len(preds)
        length = mask.shape[1] // n_groups
        num = preds[0].new_zeros(())
        den = preds[0].new_zeros(())
        hidden = 0.0
        for g, (pred, (target, valid)) in enumerate(zip(preds, self._targets(batch))):
            if self.config.norm_pix_loss:
                target = self._normalised(target, valid)[0]
            w = ok[:, g * length:(g + 1) * length, None] * valid.to(pred.dtype)
            num = num + (w * (pred.float() - target.float()) ** 2).sum()
            den = den + w.sum()
            hidden += float(mask[:, g * length:(g + 1) * length].sum()) * pred.shape[-1]
        # With nothing usable masked, num and den are 0: the loss is a zero that keeps the graph (and needs no
        # host sync to decide so).
        loss = num / den.clamp(min=1.0)
        return loss, {"loss": float(loss.detach()), "masked_tokens": float(mask.sum()), "masked_pixels": float(den),
                      "valid_share": float(den) / max(hidden, 1.0)}

    @torch.no_grad()
    def reconstruct(self, parts: ModelParts, batch: Mapping[str, Any], noise: torch.Tensor | None = None
                    ) -> dict[str, torch.Tensor]:
        """Predictions in the targets' units, each ``(B, N, pixels·C)`` like ``patches``.

        ``pred`` (norm_pix_loss predictions are mapped back with each patch's own mean and std),
        ``target`` (the input patches), ``mask`` (1 where the patch element was hidden), ``valid``.
        """
        preds, mask = self.predict(parts, batch, batch.get("noise") if noise is None else noise)
        patches = batch["patches"]
        b, n, size = patches.shape
        pixels = size // self.channels
        pred_full = patches.new_zeros(b, n, pixels, self.channels)
        mask_full = patches.new_zeros(b, n, pixels, self.channels)
        groups = self.band_groups or [list(range(self.channels))]
        for g, (pred, idx, (target, valid)) in enumerate(zip(preds, groups, self._targets(batch))):
            if self.config.norm_pix_loss:
                _, mean, std = self._normalised(target, valid)
                pred = pred * std + mean
            pred_full[..., idx] = pred.reshape(b, n, pixels, len(idx)).to(pred_full.dtype)
            mask_full[..., idx] = mask[:, g * n:(g + 1) * n, None, None].to(mask_full.dtype)
        given = batch.get("pixel_valid")
        valid = torch.ones(b, n, pixels, dtype=torch.bool, device=patches.device) if given is None else given.bool()
        valid_full = valid.unsqueeze(-1).expand(-1, -1, -1, self.channels).reshape(b, n, size)
        return {"pred": pred_full.reshape(b, n, size), "target": patches, "mask": mask_full.reshape(b, n, size),
                "valid": valid_full}


def build(config: MAEConfig) -> MAEObjective:
    return MAEObjective(config)
