"""``linear-probe``: how linearly separable the frozen encoder's features of labelled chips are.

Features come from the pipeline's encoder (``registry_gfm.encoder.ImageEncoder`` over ``parts.embed``,
``parts.positional`` and ``parts.backbone``, given each chip's time, centre and ground-sample distance when
the samples carry them), pooled as the cls token or the mean patch token. The probe of
:mod:`registry_gfm.evaluators._probe` (MAE's protocol) is fitted on the ``train`` split's features and
scored on the evaluated split. Each sample must carry its class as ``label`` (an int), which the ``patch``
tokenizer passes on from the chip source.

Metrics: ``accuracy``, ``macro_f1`` (classes absent from both truth and predictions left out),
``train_accuracy``, ``f1_class_<c>`` for every class present, ``classes``, ``train_samples``, ``samples``.
"""

from __future__ import annotations

from typing import Any

import torch

from registry_core.nn import eval_mode
from registry_core.training import to_device
from registry_gfm.batches import batches, chips_of, grid_of, model_device
from registry_gfm.evaluators._probe import features, fit_linear_probe
from registry_gfm.evaluators.specs import LinearProbeConfig

__all__ = ["LinearProbeEvaluator", "build"]

NAME = "linear-probe"
#: Sample metadata handed to the encoder, as ``ImageEncoder.forward`` names it.
_META = {"time": "time", "center_lonlat": "lonlat", "gsd": "gsd"}


class LinearProbeEvaluator:
    """``evaluate(pipeline, split) -> {"accuracy", "macro_f1", "train_accuracy", ...}``; see the module docstring."""

    def __init__(self, config: LinearProbeConfig) -> None:
        self.config = config

    def _features(self, pipeline: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features (N, D), labels (N,))`` of a split, both on the CPU."""
        from registry_gfm.encoder import ImageEncoder

        cfg, parts = self.config, pipeline.parts
        dataset = pipeline.data.dataset(split)
        if len(dataset) == 0:
            raise ValueError(f"{NAME}: split {split!r} has no samples")
        encoder = ImageEncoder(parts.embed, parts.positional, parts.backbone)
        device = model_device(parts)
        feats: list[torch.Tensor] = []
        labels: list[torch.Tensor] = []
        tokenizer = getattr(pipeline, "tokenizer", None)
        with eval_mode(parts):
            for _, batch in batches(NAME, dataset, cfg.feature_batch_size, tokenizer, cfg.max_samples):
                label = batch.get("label")
                if not isinstance(label, torch.Tensor) or label.dim() != 1 or label.is_floating_point():
                    raise ValueError(
                        f"{NAME}: samples of split {split!r} need a 'label' (one int class per sample); "
                        + ("they have none" if label is None else f"got {type(label).__name__} "
                           f"{tuple(getattr(label, 'shape', ()))}")
                        + ". Use a labelled chip source for the probe."
                    )
                batch = to_device(batch, device)
                chips = chips_of(batch["patches"], parts.embed, grid_of(batch))
                meta = {name: batch[key] for key, name in _META.items() if isinstance(batch.get(key), torch.Tensor)}
                feats.append(features(encoder, chips, cfg.pool, **meta).float().cpu())  # type: ignore[arg-type]
                labels.append(label.long().cpu())
        return torch.cat(feats), torch.cat(labels)

    def evaluate(self, pipeline: Any, split: str = "val") -> dict[str, float]:
        cfg = self.config
        train_x, train_y = self._features(pipeline, "train")
        val_x, val_y = self._features(pipeline, split)
        seen = int(max(train_y.max(), val_y.max())) + 1
        classes = cfg.classes if cfg.classes is not None else max(seen, 2)
        if int(min(train_y.min(), val_y.min())) < 0 or seen > classes:
            raise ValueError(f"{NAME}: labels must be 0..{classes - 1} (classes={classes}); got labels from "
                             f"{int(min(train_y.min(), val_y.min()))} to {seen - 1}")
        result = fit_linear_probe(train_x, train_y, val_x, val_y, classes=classes, epochs=cfg.epochs, lr=cfg.lr,
                                  batch_size=cfg.batch_size, seed=cfg.seed)
        metrics = {
            "accuracy": result.accuracy,
            "macro_f1": result.macro_f1,
            "train_accuracy": result.train_accuracy,
            "classes": float(classes),
            "train_samples": float(train_x.shape[0]),
            "samples": float(val_x.shape[0]),
        }
        metrics.update({f"f1_class_{c}": f for c, f in result.per_class_f1.items()})
        return metrics


def build(config: LinearProbeConfig) -> LinearProbeEvaluator:
    return LinearProbeEvaluator(config)
