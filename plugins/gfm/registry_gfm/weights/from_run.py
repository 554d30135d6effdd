"""``from-run``: load the encoder a run of ours trained (its ``model.safetensors``) into a new pipeline.

The run's patch embedding, positional encoder and backbone fill the new model's encoder; its objective
(an MAE decoder) is left out. Composition already compared the run's bands, patch size and width with the
new pipeline's (the ports of ``FromRunConfig``); the data is normalised with the run's own mean / std.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from registry_core.atomic import file_inside
from registry_core.interfaces import ModelParts
from registry_core.nn.load_parts import load_run_tensors
from registry_gfm.weights.specs import FromRunConfig

__all__ = ["RunWeights", "build"]

#: Our part names whose tensors a run's encoder provides.
ENCODER_PREFIXES = ("embed.", "positional.", "backbone.")


class RunWeights:
    """A finished run as pretrained weights: ``meta``, ``fills``, ``files()``, ``input_stats()``, ``load_into``."""

    def __init__(self, config: FromRunConfig) -> None:
        self.config = config
        self.path = Path(config.path)
        self.fills: tuple[str, ...] = ("encoder",)
        data = config.run_config.get("data", {})
        self.meta: dict[str, Any] = {
            "run": str(self.path),
            "bands": list(config.bands or ()),
            "patch_size": config.patch_size,
            "apply_scale": bool(data.get("apply_scale", True)),
            "stats_scale": 1.0,  # the run's mean / std are already in the data's units
        }
        self._stats: tuple[list[float], list[float]] | None = None

    def files(self) -> list[Path]:
        """The run's weights, whose hash goes into the lock."""
        return [file_inside(self.path, "model.safetensors")]

    def input_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-band mean and std the run trained with: pinned in its pipeline.toml, else recomputed from
        its data source (a run saved before mean / std were pinned)."""
        if self._stats is None:
            data = dict(self.config.run_config.get("data", {}))
            if data.get("mean") is not None and data.get("std") is not None:
                self._stats = ([float(v) for v in data["mean"]], [float(v) for v in data["std"]])
            else:
                from registry_core import get_registry

                use = data.pop("use")
                source = get_registry().build("data_source", use, **data)
                norm = source.normalization()
                self._stats = (norm["mean"], norm["std"])
        mean, std = self._stats
        return torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)

    def load_into(self, parts: ModelParts) -> None:
        """Copy the run's encoder tensors into ``parts``; missing, unexpected or misshapen keys are errors."""
        load_run_tensors(parts, self.path, ENCODER_PREFIXES, self.fills, "from-run")

def build(config: FromRunConfig) -> RunWeights:
    return RunWeights(config)
