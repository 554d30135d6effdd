"""The seg-prithvi recipe: the registered recipe equals examples/seg-prithvi.toml, and a short run pulls its card
from a hub on loopback (a checkpoint in Prithvi-EO-2.0-tiny-TL's exact layout and size, random weights) and
reports the three mIoUs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from registry_core import compose, get_registry
from registry_core.testing import LoopbackHub

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = ROOT / "examples" / "seg-prithvi.toml"
REPO, FILE = "ibm-nasa-geospatial/Prithvi-EO-2.0-tiny-TL", "Prithvi_EO_V2_tiny_TL.pt"


def test_the_recipe_is_the_example_file() -> None:
    from registry_gfm.recipes.seg_prithvi import SegPrithvi

    assert tomllib.loads(EXAMPLE.read_text()) == SegPrithvi().config()
    assert get_registry().get("recipe", "seg-prithvi").id == "gfm:seg-prithvi"
    card = get_registry().get("weights", SegPrithvi().config()["weights"]["use"]).card
    assert card is not None and card.repo == REPO


def tiny_tl_checkpoint(store: Path) -> bytes:
    """A random encoder of the recipe's exact architecture (ViT 192 x 12, 3 heads, time and location scales) in
    Prithvi-EO-2.0's layout, as the repo's .pt holds it."""
    from registry_gfm.recipes.seg_prithvi import SegPrithvi
    from registry_gfm.weights.prithvi import prithvi_state_dict

    config = SegPrithvi().config()
    del config["weights"], config["evaluators"]
    config["data"]["store"] = str(store)
    torch.manual_seed(3)
    pipe = compose(config).build(prepare=False)
    tensors = prithvi_state_dict(pipe.parts, "v2", ("encoder",))
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return buffer.getvalue()


@pytest.mark.slow
def test_a_short_seg_prithvi_run_pulls_the_card_and_reports_three_mious(hub: LoopbackHub, lsat7_store: Path,
                                                                        tmp_path: Path) -> None:
    commit = hub.add_repo(REPO, {FILE: tiny_tl_checkpoint(lsat7_store), "config.json": b'{"architecture": "x"}\n'})
    run = subprocess.run(
        [sys.executable, "-m", "registry_core", "run", str(EXAMPLE), "--out", "seg", "--steps", "3",
         "--set", f"data.store={lsat7_store}", "--set", f"data.labels={ROOT / 'tests/data/gfm_lsat7/strata.tif'}",
         "--set", "data.samples_per_epoch=32", "--set", "train.batch_size=4"],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    table = json.loads((tmp_path / "seg" / "baselines.json").read_text())
    assert set(table) == {"finetuned", "random_init", "random_forest"}
    lock = json.loads((tmp_path / "seg" / "pipeline.lock.json").read_text())
    assert (lock["hub"]["weights"]["repo"], lock["hub"]["weights"]["commit"]) == (REPO, commit)
