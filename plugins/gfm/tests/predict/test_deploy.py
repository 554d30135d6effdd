"""``export RUN --to deploy OUT``: a finetuned run folder that predicts after its pretraining run is gone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from registry_core import compose
from registry_core.cli import main
from registry_gfm.predict import load_run_model, open_scene, predict_to_file

from ..conftest import finetune_config


def test_a_deployment_predicts_the_same_after_the_pretraining_run_is_deleted(
        lsat7_store: Path, tiny_mae_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pretrained = tmp_path / "mae"
    shutil.copytree(tiny_mae_run, pretrained)
    run = tmp_path / "seg"
    config = finetune_config(lsat7_store, pretrained)
    config["train"].update(steps=2)
    pipeline = compose(config)
    pipeline.fit(run)
    pipeline.save(run)

    def predict(folder: Path, name: str) -> np.ndarray:
        model = load_run_model(folder, device="cpu")
        scene = open_scene(lsat7_store, model.bands, physical=model.physical)
        out = predict_to_file(scene, model, tmp_path / f"{name}.zarr", tile=32, overlap=8, probabilities=True)
        return np.asarray(zarr.open_group(out.output, mode="r")["image"][...])

    before = predict(run, "before")
    assert main(["export", str(run), str(tmp_path / "deploy"), "--to", "deploy"]) == 0
    assert "as a self-contained run folder" in capsys.readouterr().out
    shutil.rmtree(pretrained)
    with pytest.raises(Exception, match="mae"):  # the run itself still needs its pretraining run
        load_run_model(run, device="cpu")
    deployed = tmp_path / "deploy"
    assert "[weights]" not in (deployed / "pipeline.toml").read_text()
    lock = json.loads((deployed / "pipeline.lock.json").read_text())
    assert set(lock["files"]) == {"model:model.safetensors"} and "weights" not in {c["slot"] for c in lock["components"]}
    assert np.array_equal(predict(deployed, "after"), before, equal_nan=True)


def test_deploy_refuses_a_folder_that_is_not_a_run_and_a_non_empty_output(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    assert main(["export", str(tmp_path), str(tmp_path / "x"), "--to", "deploy"]) == 1
    assert "is not a run folder (no pipeline.toml)" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "pipeline.toml").write_text("")
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "out"), "--to", "deploy"]) == 1
    assert "is not empty; choose another folder or pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
