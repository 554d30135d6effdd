"""The mae-tiny recipe: the registered recipe equals examples/mae-tiny.toml; short runs learn, resume, run on 2 ranks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from registry_core import Pipeline, compose, get_registry

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = ROOT / "examples" / "mae-tiny.toml"
SHORT = ["--set", "data.samples_per_epoch=512", "--set", "train.batch_size=16", "--set", "train.eval_every=20",
         "--set", "train.log_every=10", "--set", "train.checkpoint_every=20", "--set", "train.warmup_steps=5"]


def test_recipe_and_example_file_are_the_same_pipeline() -> None:
    assert Pipeline.from_toml(EXAMPLE) == compose({"recipe": "mae-tiny"})
    assert get_registry().get("recipe", "mae-tiny").id == "gfm:mae-tiny"


def cli(*args: str, cwd: Path, torchrun: bool = False) -> subprocess.CompletedProcess[str]:
    head = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"] if torchrun else \
        [sys.executable]
    return subprocess.run([*head, "-m", "registry_core", *args], capture_output=True, text=True, cwd=cwd, check=False,
                          timeout=600)


def val_losses(run: Path) -> list[float]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["val_loss"] for r in lines if "val_loss" in r]


@pytest.mark.slow
def test_short_mae_tiny_run_learns_writes_the_grid_and_resumes(lsat7_store: Path, tmp_path: Path) -> None:
    store = ["--set", f"data.store={lsat7_store}"]
    run = cli("run", str(EXAMPLE), "--out", "out", "--steps", "40", *store, *SHORT, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    losses = val_losses(tmp_path / "out")
    assert len(losses) == 3 and losses[-1] < 0.9 * losses[0]  # steps 0, 20, 40
    assert "validation loss: first" in run.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    rec = summary["evaluators"]["gfm:reconstruction"]
    assert rec["mse"] > 0 and rec["psnr"] > 0
    png = tmp_path / "out" / "reconstruction.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    resumed = cli("run", str(EXAMPLE), "--out", "out", "--steps", "60", "--resume", *store, *SHORT, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    steps = [json.loads(x)["step"] for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 60  # continued after 40, nothing repeated
    loaded = Pipeline.load(tmp_path / "out")
    assert loaded.parts.backbone.num_prefix_tokens == 1


@pytest.mark.slow
def test_mae_tiny_runs_under_torchrun_on_two_ranks(lsat7_store: Path, tmp_path: Path) -> None:
    run = cli("run", str(EXAMPLE), "--out", "two", "--steps", "20", "--set", f"data.store={lsat7_store}", *SHORT,
              cwd=tmp_path, torchrun=True)
    assert run.returncode == 0, run.stderr[-3000:]
    losses = val_losses(tmp_path / "two")
    assert losses[-1] < losses[0]
    assert (tmp_path / "two" / "model.safetensors").is_file()
