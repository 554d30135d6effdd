"""The seg-tiny recipe: the registered recipe equals examples/seg-tiny.toml; a short run reports the three mIoUs."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from registry_core import ConfigError, compose, get_registry

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = ROOT / "examples" / "seg-tiny.toml"


def test_the_recipe_is_the_example_file() -> None:
    # Composing either reads runs/mae-tiny (the from-run weights), so the two configs are compared as data.
    from registry_gfm.recipes.seg_tiny import SegTiny

    assert tomllib.loads(EXAMPLE.read_text()) == SegTiny().config()
    assert get_registry().get("recipe", "seg-tiny").id == "gfm:seg-tiny"


def test_the_recipe_names_the_missing_pretraining_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"run folder .*mae-tiny has no pipeline\.toml"):
        compose({"recipe": "seg-tiny", "weights": {"use": "from-run", "path": str(tmp_path / "mae-tiny")}})


@pytest.mark.slow
def test_a_short_seg_tiny_run_reports_the_finetuned_random_init_and_forest_miou(tiny_mae_run: Path,
                                                                               lsat7_store: Path,
                                                                               tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "registry_core", "run", str(EXAMPLE), "--out", "seg", "--steps", "6",
         "--set", f"data.store={lsat7_store}", "--set", f"weights.path={tiny_mae_run}",
         "--set", f"data.labels={ROOT / 'tests/data/gfm_lsat7/strata.tif'}",
         "--set", "backbone.embed_dim=32", "--set", "backbone.depth=2", "--set", "backbone.heads=2",
         "--set", "data.chip_size=16", "--set", "data.samples_per_epoch=64", "--set", "train.batch_size=8"],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    table = json.loads((tmp_path / "seg" / "baselines.json").read_text())
    assert set(table) == {"finetuned", "random_init", "random_forest"}
    for row in table.values():
        assert 0.0 <= row["miou"] <= 1.0 and row["pixels"] == table["finetuned"]["pixels"]
    assert (tmp_path / "seg" / "confusion.png").is_file() and (tmp_path / "seg" / "confusion.json").is_file()
    assert (tmp_path / "seg" / "baseline-random-init" / "model.safetensors").is_file()
    assert "random_forest/miou" in run.stdout
    # the baseline's own training loop is announced, so it does not read as the run starting over
    assert "baselines: training the same model from random init, for comparison, into " in run.stderr
