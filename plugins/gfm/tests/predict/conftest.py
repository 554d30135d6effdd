"""Fixtures of the predict tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry_core import compose
from registry_core.cli import main

from ..conftest import finetune_config

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """``predict ARGS --quiet`` through the real CLI entry point: (exit code, stdout, stderr)."""
    code = main(["predict", *map(str, args), "--quiet"])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def mae_run(lsat7_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder without a head: an untrained tiny MAE (patch 8, 16-wide ViT); predict writes its embeddings.
    One per test module, so a module that tampers with it leaves the others' alone."""
    config = {
        "data": {"use": "zarr-chips", "store": str(lsat7_store), "chip_size": 32, "sampling": "random",
                 "samples_per_epoch": 16, "val_fraction": 0.3, "min_valid": 0.5, "bands": BANDS},
        "tokenizer": {"use": "patch", "patch_size": 8},
        "positional": {"use": "sincos-2d"},
        "backbone": {"use": "vit", "embed_dim": 16, "depth": 1, "heads": 2},
        "objective": {"use": "mae", "mask_ratio": 0.75, "decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2},
        "train": {"steps": 1, "batch_size": 4, "seed": 0},
    }
    return compose(config).build().save(tmp_path_factory.mktemp("runs") / "mae")


@pytest.fixture(scope="module")
def seg_run(lsat7_store: Path, tiny_mae_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finetuned run (finetune objective, FPN segmentation head, the tiny MAE's encoder from-run), 3 steps."""
    config = finetune_config(lsat7_store, tiny_mae_run, head={"use": "segmentation", "decoder": "fpn", "channels": 8})
    config["train"].update(steps=3)
    out = tmp_path_factory.mktemp("seg-run") / "run"
    pipeline = compose(config)
    pipeline.fit(out)
    pipeline.save(out)
    return out
