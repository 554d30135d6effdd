"""Recipe ``seg-prithvi``: the seg-tiny land-cover task on a pulled Prithvi-EO-2.0-tiny-TL encoder.

The encoder comes from the hub by its card (``[weights] use = "prithvi-eo-2.0-tiny-tl"``: pulled into the
huggingface_hub cache on first use, then offline) and is frozen; the data are normalised with Prithvi's own
mean / std, its time and location encodings read each chip's date and centre, and the same progressive head
as seg-tiny learns the seven strata classes on 64 x 64 chips (Prithvi's 16-pixel patches). The ``baselines``
evaluator puts the mIoU next to a random-init encoder of the same shape and a per-pixel random forest.
``examples/seg-prithvi.toml`` is the same pipeline as a file.
"""

from __future__ import annotations

import copy
from typing import Any

from registry_gfm.recipes.seg_tiny import CONFIG as SEG_TINY

CONFIG: dict[str, Any] = {
    "name": "seg-prithvi",
    "description": "land-cover segmentation (7 strata classes) with the frozen Prithvi-EO-2.0-tiny-TL encoder "
    "pulled from the hub, next to a random-init encoder and a random forest.",
    "data": {**SEG_TINY["data"], "chip_size": 64, "samples_per_epoch": 2048},
    "tokenizer": {"use": "patch", "patch_size": 16},
    "positional": {"use": "sincos-3d", "time_encoding": True, "location_encoding": True},
    "backbone": {"use": "vit", "embed_dim": 192, "depth": 12, "heads": 3},
    "head": {"use": "segmentation", "decoder": "progressive", "channels": 64, "dropout": 0.1},
    "objective": {"use": "finetune", "freeze_encoder": True},
    "weights": {"use": "prithvi-eo-2.0-tiny-tl"},
    "evaluators": [{"use": "task-metrics", "out": "confusion"}, {"use": "baselines", "out": "baselines.json"}],
    "train": {"steps": 100, "batch_size": 16, "lr": 2e-3, "min_lr": 1e-4, "warmup_steps": 10,
              "weight_decay": 0.01, "log_every": 25, "checkpoint_every": 0, "eval_every": 0, "seed": 0},
}


class SegPrithvi:
    """The recipe object: ``config()`` returns a fresh copy of the pipeline config."""

    def config(self) -> dict[str, Any]:
        return copy.deepcopy(CONFIG)
