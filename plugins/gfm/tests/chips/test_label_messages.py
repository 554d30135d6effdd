"""Bad labels and bad pretraining runs through the real CLI: one ``error:`` line naming the file, option or run
at fault (not a broadcast error, "does not exist" for a folder, or an AttributeError), and no run folder left."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import rasterio

from registry_core.pipeline._toml import dumps
from registry_core.testing import one_error_line, run_cli

from ..conftest import STRATA, finetune_config


def run_seg(tmp_path: Path, config: dict) -> str:
    path = tmp_path / "seg.toml"
    path.write_text(dumps(config))
    line = one_error_line(run_cli("run", str(path), "--out", "seg", cwd=tmp_path))
    assert not (tmp_path / "seg").exists()
    return line


def test_a_labels_path_that_is_a_folder_is_named(lsat7_store: Path, tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    line = run_seg(tmp_path, finetune_config(lsat7_store, labels=str(tmp_path / "labels")))
    assert line == (f"error: label raster {tmp_path / 'labels'} is a folder; expected a raster file (a GeoTIFF of "
                    "class codes) or 'store:NAME'")


def test_a_label_raster_without_any_label_is_named(lsat7_store: Path, tmp_path: Path) -> None:
    empty = tmp_path / "nolabels.tif"
    with rasterio.open(STRATA) as src:
        profile, data = src.profile, src.read()
    profile.update(nodata=0)
    with rasterio.open(empty, "w", **profile) as dst:
        dst.write(np.zeros_like(data))
    line = run_seg(tmp_path, finetune_config(lsat7_store, labels=str(empty)))
    assert line == (f"error: label raster {empty} holds no label: every one of its {data.size} pixels is its nodata "
                    "value 0; expected class codes where the classes are known")


def test_duplicate_label_values_are_named(lsat7_store: Path, tmp_path: Path) -> None:
    line = run_seg(tmp_path, finetune_config(lsat7_store, label_values=[1, 1, 2, 3, 4, 5, 6]))
    assert line.endswith("[data.label_values] option 'label_values' [1, 1, 2, 3, 4, 5, 6] names the raster value(s) "
                         "1 for more than one class; expected one distinct value per class"), line


def test_frames_beyond_the_datacubes_dates_are_named(lsat7_store: Path, tmp_path: Path) -> None:
    config = finetune_config(lsat7_store, frames=2)
    config["positional"] = {"use": "sincos-3d"}
    line = run_seg(tmp_path, config)
    assert line == (f"error: datacube store {lsat7_store} has 1 time step; option 'frames' = 2 needs at least 2 "
                    "(lower 'frames', or ingest more dates)")


def test_a_damaged_label_cache_is_named(lsat7_store: Path, tmp_path: Path) -> None:
    store = Path(shutil.copytree(lsat7_store, tmp_path / "cube.zarr"))
    config = finetune_config(store)
    first = tmp_path / "first.toml"
    first.write_text(dumps(config))
    done = run_cli("run", str(first), "--out", "first", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (cache,) = tmp_path.glob("cube.zarr.labels-*.npy")
    for damage in ("shape", "object", "garbage"):
        if damage == "shape":
            np.save(cache, np.zeros((3, 3), np.uint8))
        elif damage == "object":  # a pickle inside the .npy: refused, never unpickled
            np.save(cache, np.array([{"a": 1}] * 4, dtype=object).reshape(2, 2), allow_pickle=True)
        else:
            cache.write_bytes(b"not an array")
        line = run_seg(tmp_path, config)
        assert line.startswith(f"error: label cache {cache} (labels {STRATA} on the grid of {store}) is damaged or "
                               "not ours: "), (damage, line)
        assert line.endswith("; delete it and it is rebuilt from the label raster")


def test_from_run_on_a_text_run_is_named(lsat7_store: Path, tmp_path: Path) -> None:
    run = tmp_path / "gpt"
    run.mkdir()
    (run / "pipeline.toml").write_text(dumps({
        "data": {"use": "llm:text-shards", "paths": ["corpus.txt"]}, "tokenizer": {"use": "llm:bpe"},
        "positional": {"use": "llm:learned"}, "backbone": {"use": "llm:gpt", "embed_dim": 32},
        "objective": {"use": "llm:next-token"}}))
    (run / "model.safetensors").write_bytes(b"")
    line = run_seg(tmp_path, finetune_config(lsat7_store, run))
    assert line.endswith(f"[weights] run folder {run} is a text run (data `llm:text-shards`, tokenizer `llm:bpe`, "
                         "backbone `llm:gpt`): from-run loads the encoder of an imagery run (a patch tokenizer and an "
                         "image backbone), such as runs/mae-tiny"), line


def test_from_run_names_the_runs_corrupt_pipeline_toml(lsat7_store: Path, tiny_mae_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(tiny_mae_run, tmp_path / "mae"))
    with (run / "pipeline.toml").open("a") as fh:
        fh.write("\n[[[broken\n")
    line = run_seg(tmp_path, finetune_config(lsat7_store, run))
    assert f"[weights] {run / 'pipeline.toml'} is not valid TOML: " in line, line
