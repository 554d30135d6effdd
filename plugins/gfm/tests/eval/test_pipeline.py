"""Both imagery evaluators on a composed pipeline over a real Zarr datacube (the Landsat 7 crop): zarr-chips,
patch tokenizer, sincos-2d, vit and mae as the registry builds them.

The datacube has no labels, so the linear probe gets them from a wrapper that labels each chip by its brightest
band; the reconstruction runs on the data source as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from registry_core import compose
from registry_gfm.evaluators.linear_probe import LinearProbeEvaluator
from registry_gfm.evaluators.reconstruction import ReconstructionEvaluator
from registry_gfm.evaluators.specs import LinearProbeConfig, ReconstructionConfig
from registry_gfm.render import grid_size

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _pipeline(store: Path) -> Any:
    config = {
        "data": {"use": "zarr-chips", "store": str(store), "chip_size": 32, "sampling": "random",
                 "samples_per_epoch": 48, "val_fraction": 0.3, "min_valid": 0.5,
                 "bands": ["blue", "green", "red", "nir08", "swir16", "swir22"]},
        "tokenizer": {"use": "patch", "patch_size": 8},
        "positional": {"use": "sincos-2d"},
        "backbone": {"use": "vit", "embed_dim": 32, "depth": 1, "heads": 2},
        "objective": {"use": "mae", "mask_ratio": 0.75, "decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2},
        "train": {"steps": 1, "batch_size": 8, "seed": 0},
    }
    return compose(config).build()


class Labelled:
    """Items of a dataset with ``label`` = the band with the largest mean over the chip."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.dataset[i])
        item["label"] = int(item["patches"].reshape(-1, 6).mean(dim=0).argmax()) % 2
        return item


class LabelledData:
    def __init__(self, data: Any) -> None:
        self.inner = data

    def dataset(self, split: str) -> Labelled:
        return Labelled(self.inner.dataset(split))


def test_evaluators_on_a_composed_pipeline(lsat7_store: Path, tmp_path: Path) -> None:
    p = _pipeline(lsat7_store)
    out = tmp_path / "reconstruction.png"
    metrics = ReconstructionEvaluator(ReconstructionConfig(batch_size=8, out=str(out), samples=2)).evaluate(p, "val")
    assert metrics["samples"] > 0 and metrics["mse"] > 0 and metrics["psnr"] > 0
    with Image.open(out) as im:
        assert im.size == grid_size(2, 32, 32)

    class Labelling:  # the same pipeline, its data labelled
        data = LabelledData(p.data)
        parts, objective, tokenizer = p.parts, p.objective, p.tokenizer

    probe = LinearProbeEvaluator(LinearProbeConfig(epochs=5, batch_size=16)).evaluate(Labelling(), "val")
    assert 0.0 <= probe["accuracy"] <= 1.0 and probe["train_samples"] == len(p.data.dataset("train"))
    assert torch.is_tensor(p.parts.backbone.prefix)  # the encoder was not replaced
