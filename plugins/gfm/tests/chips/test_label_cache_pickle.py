"""A labels cache (``<store>.labels-<key>.npy``) that is an object array, i.e. a pickle whose payload would run code,
through the real CLI: ``run`` of a labelled pipeline over that datacube refuses it in one ``error:`` line naming the
file, and the payload never runs."""

from __future__ import annotations

import pathlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry_core.pipeline._toml import dumps
from registry_core.testing import one_error_line, run_cli
from registry_gfm.chips.labels import LabelSpec, label_cache_path
from registry_gfm.cube.reader import open_cube

STRATA = Path(__file__).resolve().parents[4] / "tests" / "data" / "gfm_lsat7" / "strata.tif"
LSAT7_BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]
VALUES = [1, 2, 3, 4, 5, 6, 7]


class _TouchOnLoad:
    """Pickles as ``pathlib.Path.touch(marker)``: loading it runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (self.marker,))


def finetune_config(store: Path) -> dict[str, Any]:
    """A tiny segmentation finetune over ``store`` with the strata labels (as the finetune tests use)."""
    return {
        "name": "tiny",
        "data": {"use": "zarr-chips", "store": str(store), "chip_size": 16, "sampling": "random",
                 "samples_per_epoch": 64, "val_fraction": 0.2, "bands": LSAT7_BANDS, "labels": str(STRATA),
                 "num_classes": len(VALUES), "label_values": VALUES, "min_labelled": 0.3},
        "tokenizer": {"use": "patch", "patch_size": 4},
        "positional": {"use": "sincos-2d"},
        "backbone": {"use": "vit", "embed_dim": 32, "depth": 2, "heads": 2},
        "objective": {"use": "finetune"},
        "head": {"use": "segmentation", "channels": 8},
        "train": {"steps": 4, "batch_size": 8, "lr": 1e-3, "log_every": 2, "checkpoint_every": 0, "seed": 0},
    }


@pytest.fixture
def store(lsat7_store: Path, tmp_path: Path) -> Path:
    """A private copy of the Landsat 7 datacube: the hostile cache goes beside it, never beside the shared one."""
    return Path(shutil.copytree(lsat7_store, tmp_path / "datacube.zarr"))


def test_an_object_array_labels_cache_is_refused_and_its_pickle_never_runs(store: Path, tmp_path: Path) -> None:
    cache = label_cache_path(open_cube(store), LabelSpec(str(STRATA), len(VALUES), 255, tuple(VALUES)))
    marker = tmp_path / "payload-ran"
    np.save(cache, np.array([_TouchOnLoad(marker)], dtype=object), allow_pickle=True)
    assert cache.is_file() and not marker.exists()
    (tmp_path / "finetune.toml").write_text(dumps(finetune_config(store)))

    line = one_error_line(run_cli("run", "finetune.toml", "--out", "r", cwd=tmp_path), 1)
    assert not marker.exists(), "the labels cache's pickle ran"
    assert cache.name in line, f"the error does not name the labels cache {cache}: {line!r}"

    np.load(cache, allow_pickle=True)  # the payload is real: loading with pickles allowed runs it
    assert marker.exists()
