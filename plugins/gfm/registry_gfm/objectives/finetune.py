"""``finetune``: supervised finetuning of a (pretrained) encoder through a ``[head]``, for labelled chips.

The encoder (patch embedding, positions, ViT) runs on every token, the head reads the blocks it taps
(``head.taps``) and returns logits: ``(B, K, H, W)`` for segmentation, ``(B, K)`` for classification.
The loss is cross-entropy over labelled pixels (or chips) only: ``ignore_index`` never counts, and with
``class_weights`` the mean is weighted as in ``torch.nn.functional.cross_entropy``. A batch without any
label contributes a loss of 0 rather than NaN.

``freeze_encoder`` (the default) turns off the encoder's gradients: the head learns on fixed features, and
the encoder runs without autograd. Unfrozen, ``layer_decay`` < 1 gives each block its own learning rate
through ``lr_scales`` (read by the trainer's optimizer).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from registry_core.interfaces import ModelParts
from registry_gfm.encoder import chip_placement
from registry_gfm.heads.features import TokenFeatures
from registry_gfm.objectives.specs import FinetuneConfig
from registry_gfm.positions.placement import placement_of
from registry_gfm.tokenizers.patch_layout import as_5d, grid_from_positions

__all__ = ["FinetuneObjective", "build", "encoder_parts"]

#: The ignore label when neither the config nor the data source sets one.
DEFAULT_IGNORE = 255


def encoder_parts(parts: ModelParts) -> list[nn.Module]:
    """The modules that make up the encoder: patch embedding, positional encoder (if any), backbone."""
    return [m for m in (parts.embed, parts.positional, parts.backbone) if isinstance(m, nn.Module)]


class FinetuneObjective(nn.Module):
    """``objective(parts, batch) -> (loss, {"acc": ..., "label_weight": ...})``; ``logits(parts, batch_or_chips)``
    for inference."""

    #: The loss is a mean over the labelled targets (class-weighted when ``class_weights`` is set): accumulation,
    #: ranks and validation weigh each batch by that total, so they compute the mean over the whole batch or split.
    loss_weight = "label_weight"

    def __init__(self, config: FinetuneConfig) -> None:
        super().__init__()
        self.config = config
        self.ignore_index = DEFAULT_IGNORE if config.ignore_index is None else int(config.ignore_index)
        weights = torch.tensor(config.class_weights, dtype=torch.float32) if config.class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        self.task = config.task

    @property
    def num_classes(self) -> int:
        return int(self.config.num_classes or 0)

    def bind(self, parts: ModelParts) -> None:
        head = parts.head
        if head is None:
            raise ValueError("objective 'finetune' needs a [head] table (use = 'segmentation' or 'classification')")
        head_task = getattr(head, "task", None)
        if self.task is None:
            self.task = head_task
        if head_task is not None and head_task != self.task:
            raise ValueError(f"objective 'finetune' is set up for {self.task}, but the head does {head_task}")
        if self.task not in ("segmentation", "classification"):
            raise ValueError("objective 'finetune' needs task = 'segmentation' or 'classification' (or a data "
                             "source with labels to wire it from)")
        if self.config.freeze_encoder:
            for module in encoder_parts(parts):
                module.requires_grad_(False)

    # -- the forward pass ---------------------------------------------------------------------

    def features(self, parts: ModelParts, inputs: Mapping[str, Any] | torch.Tensor) -> TokenFeatures:
        """The tapped encoder layers of a batch of ``patch`` tokens, or of chips ``(B, C, [T,] H, W)``."""
        embed = parts.embed
        if isinstance(inputs, torch.Tensor):
            values: torch.Tensor = as_5d(inputs)
            where, grid = chip_placement(embed, values)
        else:
            values = inputs["patches"]
            grid = grid_from_positions(inputs["positions"], int(values.shape[1]), "objective 'finetune'")
            where = placement_of(inputs)  # the tokenizer's positions already repeat the grid per band group
        taps = list(getattr(parts.head, "taps", None) or [-1])
        with torch.no_grad() if self.config.freeze_encoder else contextlib.nullcontext():
            x = embed(values)  # (B, G·N, D)
            tapped: list[torch.Tensor] = []
            parts.backbone(x, parts.positional, where, taps=taps, tapped=tapped)
        groups = int(x.shape[1]) // (grid[0] * grid[1] * grid[2])
        prefix = int(getattr(parts.backbone, "num_prefix_tokens", 0))
        return TokenFeatures(tapped, prefix, grid, groups, int(getattr(embed, "patch", 1)))

    def logits(self, parts: ModelParts, inputs: Mapping[str, Any] | torch.Tensor) -> torch.Tensor:
        """``(B, K, H, W)`` (segmentation) or ``(B, K)`` (classification) class scores."""
        assert parts.head is not None, "objective 'finetune' is not bound to a model with a head"
        out: torch.Tensor = parts.head(self.features(parts, inputs))
        return out

    def loss(self, logits: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, correct, labelled): mean cross-entropy over labelled targets and the counts for accuracy."""
        label = label.to(logits.device).long()
        if self.task == "segmentation" and tuple(label.shape) != (logits.shape[0], *logits.shape[2:]):
            raise ValueError(f"objective 'finetune': label chips are {tuple(label.shape)}, the head predicts "
                             f"{tuple(logits.shape)} (B, K, H, W); the data's chips and labels must be the same size")
        labelled = label != self.ignore_index
        bad = labelled & ((label < 0) | (label >= logits.shape[1]))
        if bool(bad.any()):
            raise ValueError(f"objective 'finetune': labels {sorted(set(label[bad].tolist()))} are outside the "
                             f"{logits.shape[1]} classes (ignore_index {self.ignore_index})")
        weight: torch.Tensor | None = self.class_weights  # type: ignore[assignment]
        total = F.cross_entropy(logits.float(), label, weight=weight, ignore_index=self.ignore_index,
                                reduction="sum", label_smoothing=self.config.label_smoothing)
        loss = total / self._weight(label).clamp(min=1e-12) if bool(labelled.any()) else total * 0.0
        correct = ((logits.argmax(dim=1) == label) & labelled).sum()
        return loss, correct, labelled.sum()

    def forward(self, parts: ModelParts, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        if "label" not in batch:
            raise KeyError("objective 'finetune' needs labelled samples: give the data source `labels` "
                           "(a label raster) and `num_classes`")
        label = batch["label"]
        loss, correct, labelled = self.loss(self.logits(parts, batch), label)
        return loss, {"acc": correct.float() / labelled.clamp(min=1).float(), "label_weight": self._weight(label)}

    def _weight(self, label: torch.Tensor) -> torch.Tensor:
        """What the loss is a mean over: the labelled targets, each counted by its class weight when given."""
        label = label.long()
        labelled = label != self.ignore_index
        weight: torch.Tensor | None = self.class_weights  # type: ignore[assignment]
        if weight is None:
            return labelled.sum().float()
        safe = torch.where(labelled, label, torch.zeros_like(label)).clamp(0, weight.numel() - 1).to(weight.device)
        return (weight[safe] * labelled.to(weight.device)).sum()

    # -- optimisation -------------------------------------------------------------------------

    def lr_scales(self, parts: ModelParts) -> dict[int, float]:
        """Layer-wise learning-rate decay of an unfrozen encoder (``registry_core.training.layer_decay_scales``);
        empty when frozen or ``layer_decay`` is 1."""
        from registry_core.training.optim import layer_decay_scales

        return {} if self.config.freeze_encoder else layer_decay_scales(parts, self.config.layer_decay)

def build(config: FinetuneConfig) -> FinetuneObjective:
    return FinetuneObjective(config)
