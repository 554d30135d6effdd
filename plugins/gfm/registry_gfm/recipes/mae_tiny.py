"""Recipe ``mae-tiny``: a small MAE pretrained on the Landsat 7 datacube that ``examples/lsat7-ingest.toml`` writes.

Sized for a clearly falling validation loss within about two minutes on 2 CPU cores;
``examples/mae-tiny.toml`` is the same pipeline as a file. Point ``data.store`` at another datacube to
pretrain on it.
"""

from __future__ import annotations

import copy
from typing import Any

CONFIG: dict[str, Any] = {
    "name": "mae-tiny",
    "description": "patch 4 + sincos-2d + ViT 4x192 + MAE (mask 0.75) on 32x32 Landsat 7 chips.",
    "data": {"use": "zarr-chips", "store": "runs/lsat7/datacube.zarr", "chip_size": 32, "sampling": "random",
             "samples_per_epoch": 4096, "val_fraction": 0.2, "min_valid": 0.5,
             "bands": ["blue", "green", "red", "nir08", "swir16", "swir22"]},
    "tokenizer": {"use": "patch", "patch_size": 4},
    "positional": {"use": "sincos-2d"},
    "backbone": {"use": "vit", "embed_dim": 192, "depth": 4, "heads": 4},
    "objective": {"use": "mae", "mask_ratio": 0.75, "decoder_dim": 128, "decoder_depth": 2, "decoder_heads": 4,
                  "norm_pix_loss": False},
    "evaluators": [{"use": "reconstruction", "out": "reconstruction.png", "samples": 6}],
    "train": {"steps": 300, "batch_size": 32, "lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 30,
              "weight_decay": 0.05, "log_every": 50, "checkpoint_every": 150, "eval_every": 100, "seed": 0},
}


class MaeTiny:
    """The recipe object: ``config()`` returns a fresh copy of the pipeline config."""

    def config(self) -> dict[str, Any]:
        return copy.deepcopy(CONFIG)
