"""The trainable model a pipeline assembles from its parts (imports torch; loaded only on build)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from registry_core.interfaces import ModelParts

__all__ = ["PipelineModel"]


class PipelineModel(nn.Module):
    """embed -> (positional) -> backbone -> objective (-> head); ``forward(batch) -> (loss, metrics)``.

    The parts are registered as submodules so one state dict (and one optimizer) covers them all;
    ``parts`` is the same model as a :class:`ModelParts`, what objectives, heads and weights receive.
    """

    def __init__(self, embed: nn.Module, positional: nn.Module | None, backbone: nn.Module, objective: Any,
                 head: nn.Module | None = None) -> None:
        super().__init__()
        self.embed = embed
        self.positional = positional
        self.backbone = backbone
        self.objective = objective
        self.head = head
        self.parts = ModelParts(embed, positional, backbone, objective, head)
        objective.bind(self.parts)
        bind_head = getattr(head, "bind", None)
        if callable(bind_head):
            bind_head(self.parts)
        #: Read by the trainer for throughput and MFU; set by Pipeline.build from the components.
        self.tokens_per_sample: int | None = None
        self.flops_per_token: float | None = None
        #: What one sample is called when throughput is not counted in tokens (``"chips"``).
        self.sample_unit: str = "samples"

    @property
    def count_metrics(self) -> tuple[str, ...]:
        """The objective's metrics that count things (summed, not averaged, by the trainer)."""
        return tuple(getattr(self.objective, "count_metrics", ()))

    @property
    def loss_weight(self) -> str | None:
        """The count metric the objective's loss is a mean over (validation weighs batches by it)."""
        weight = getattr(self.objective, "loss_weight", None)
        return str(weight) if weight else None

    def lr_scales(self) -> dict[int, float]:
        """Learning-rate factors by parameter id, from the objective's ``lr_scales(parts)`` (layer-wise decay);
        parameters it does not name train at the scheduled rate."""
        scales = getattr(self.objective, "lr_scales", None)
        return dict(scales(self.parts)) if callable(scales) else {}

    def forward(self, batch: Any) -> tuple[Tensor, Mapping[str, Any]]:
        out = self.objective(self.parts, batch)
        if isinstance(out, tuple):
            return out[0], out[1]
        return out, {}
