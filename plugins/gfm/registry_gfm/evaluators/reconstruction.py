"""``reconstruction``: how well an MAE-style objective fills in the patches it hides, on one split.

For each batch of patch tokens the objective's ``reconstruct(parts, batch, noise=...)`` hides patches (the
noise of sample ``i`` is drawn from ``(seed, i)``, so every run and every batch size hides the same ones) and
returns ``pred``, ``target``, ``mask`` (1 = hidden) and ``valid`` (usable pixels), each ``(B, N, pixels·C)``
(a ``(B, N)`` mask is broadcast over each patch). Metrics, over hidden and valid pixel values of the whole
evaluated set, in the data's normalised units:

- ``mse``: the mean squared error; ``mse_visible`` the same over the patches the encoder saw (left out when
  it saw no valid pixel);
- ``psnr``: ``10·log10(R² / mse)`` in dB, ``R`` the data range of the target, ``max - min`` of the target
  values scored (normalised chips have no fixed peak, unlike 8-bit images); ``inf`` for a perfect
  reconstruction;
- ``masked_values`` (pixel-band values scored) and ``samples``.

With ``out`` set, a PNG grid of the first ``samples`` chips (frame ``frame``) is written there: input, input
with the hidden patches grey, reconstruction (the hidden patches predicted, the visible ones pasted from the
input, with the input's stretch) and the error.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from registry_core.nn import eval_mode
from registry_core.training import to_device
from registry_gfm.batches import (
    band_names,
    batches,
    chips_of,
    grid_of,
    in_run_dir,
    model_device,
    sample_noise,
)
from registry_gfm.evaluators.specs import ReconstructionConfig

__all__ = ["ReconstructionEvaluator", "build"]

NAME = "reconstruction"


class ReconstructionEvaluator:
    """``evaluate(pipeline, split) -> {"mse", "psnr", "masked_values", "samples"[, "mse_visible"]}``.

    Uses ``pipeline.data.dataset(split)``, ``pipeline.parts`` and ``pipeline.objective`` (which must offer
    ``reconstruct``, as ``mae`` does); see the module docstring. ``last_png`` is the grid written last.
    """

    def __init__(self, config: ReconstructionConfig) -> None:
        self.config = config
        self.last_png: Path | None = None

    def evaluate(self, pipeline: Any, split: str = "val") -> dict[str, float]:
        cfg = self.config
        objective, parts = pipeline.objective, pipeline.parts
        if not callable(getattr(objective, "reconstruct", None)):
            raise TypeError(
                f"{NAME} needs an objective with reconstruct(parts, batch, noise) (e.g. 'mae'), got "
                f"{type(objective).__name__}"
            )
        dataset = pipeline.data.dataset(split)
        if len(dataset) == 0:
            raise ValueError(f"{NAME}: split {split!r} has no samples")
        tokenizer = getattr(pipeline, "tokenizer", None)
        device = model_device(parts)
        limit = None if cfg.max_batches is None else cfg.max_batches * cfg.batch_size
        sq_hidden = sq_seen = 0.0
        n_hidden = n_seen = samples = 0
        lo, hi = math.inf, -math.inf
        rows: list[dict[str, np.ndarray]] = []
        with eval_mode(parts), torch.no_grad():
            for first, batch in batches(NAME, dataset, cfg.batch_size, tokenizer, limit):
                b = int(batch["patches"].shape[0])
                noise = sample_noise(cfg.seed, first, b, _token_count(batch, parts.embed))
                out = objective.reconstruct(parts, to_device(batch, device), noise=noise.to(device))
                pred, target = out["pred"].float(), out["target"].float()
                mask = out["mask"]
                if mask.dim() == 2:  # one flag per token: every value of the patch
                    mask = mask[..., None].expand_as(pred)
                hidden = mask.bool()
                valid = out["valid"].bool() if out.get("valid") is not None else torch.ones_like(hidden)
                err = (pred - target) ** 2
                scored = hidden & valid & torch.isfinite(err)
                seen = ~hidden & valid & torch.isfinite(err)
                sq_hidden += float(err[scored].double().sum())
                n_hidden += int(scored.sum())
                sq_seen += float(err[seen].double().sum())
                n_seen += int(seen.sum())
                if scored.any():
                    lo = min(lo, float(target[scored].min()))
                    hi = max(hi, float(target[scored].max()))
                samples += b
                if cfg.out is not None and len(rows) < cfg.samples:
                    rows += _grid_rows(batch, parts.embed, pred, target, hidden, valid, cfg, cfg.samples - len(rows))
        if n_hidden == 0:
            raise ValueError(
                f"{NAME}: no hidden, valid pixel to score on split {split!r} ({samples} samples): the objective "
                "masked nothing usable (mask_ratio 0, or every hidden pixel invalid)"
            )
        mse = sq_hidden / n_hidden
        data_range = hi - lo
        psnr = 10 * math.log10(data_range**2 / mse) if mse > 0 and data_range > 0 else math.inf
        if cfg.out is not None and rows:
            from registry_gfm.render import write_grid_png

            channels = rows[0]["input"].shape[0]
            self.last_png = write_grid_png(in_run_dir(pipeline, cfg.out), rows, band_names(pipeline, channels))
        metrics = {"mse": mse, "psnr": psnr, "masked_values": float(n_hidden), "samples": float(samples)}
        if n_seen:
            metrics["mse_visible"] = sq_seen / n_seen
        return metrics


def _token_count(batch: dict[str, Any], embed: Any) -> int:
    """Tokens per sample the objective masks over: one per patch and band group."""
    frac = batch.get("valid_fraction")
    if isinstance(frac, torch.Tensor) and frac.dim() == 2:
        return int(frac.shape[1])
    return int(batch["patches"].shape[1]) * int(getattr(embed, "num_groups", 1))


def _grid_rows(batch: dict[str, Any], embed: Any, pred: torch.Tensor, target: torch.Tensor, hidden: torch.Tensor,
               valid: torch.Tensor, cfg: ReconstructionConfig, want: int) -> list[dict[str, np.ndarray]]:
    """Up to ``want`` rows of the PNG grid: one frame of each sample as (C, H, W) numpy."""
    grid = grid_of(batch)
    k = min(want, pred.shape[0])

    def chips(x: torch.Tensor) -> torch.Tensor:  # (k, C, T, H, W) on the CPU
        return chips_of(x[:k].float().cpu(), embed, grid)

    inp, rec = chips(target), chips(pred)
    frames = inp.shape[2]
    if cfg.frame >= frames:
        raise ValueError(f"{NAME}: option frame={cfg.frame} but the chips have {frames} frame(s)")
    masked = chips(hidden.float()) > 0.5  # (k, C, T, H, W): band groups hide bands apart
    rec = torch.where(masked, rec, inp)  # as MAE's figures: the visible patches pasted in, the hidden predicted
    usable = chips(valid.float()).amin(dim=1) > 0.5
    f = cfg.frame
    return [{"input": inp[j, :, f].numpy(), "reconstruction": rec[j, :, f].numpy(), "mask": masked[j, :, f].numpy(),
             "valid": usable[j, f].numpy()} for j in range(k)]


def build(config: ReconstructionConfig) -> ReconstructionEvaluator:
    return ReconstructionEvaluator(config)
