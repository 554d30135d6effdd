"""A short MAE training of pipeline.toml (rope-2d, the patch replacement with NDVI) on the Landsat 7 datacube."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_short_mae_training_lowers_the_validation_loss(lsat7_store: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "registry_core", "run", str(PACKAGE / "pipeline.toml"), "--out", "out",
         "--set", f"data.store={lsat7_store}"],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["val_loss"] for r in rows if "val_loss" in r]
    assert len(losses) == 3 and losses[-1] < 0.9 * losses[0]  # steps 0, 20, 40
    lock = json.loads((tmp_path / "out" / "pipeline.lock.json").read_text())
    ids = {c["id"]: c["distribution"] for c in lock["components"]}
    assert ids["geoextras:patch"] == ids["geoextras:rope-2d"] == "registry-geoextras"
