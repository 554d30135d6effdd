"""Documented options of the imagery stack that must run as documented (issue 13, section 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from registry_core._toml import dumps

from .conftest import tiny_pipeline_config


@pytest.mark.slow
def test_run_without_a_val_split_trains_and_skips_validation_with_a_note(lsat7_store: Path, tmp_path: Path) -> None:
    config = tiny_pipeline_config(lsat7_store, evaluators=[{"use": "reconstruction", "samples": 2}])
    config["data"]["val_fraction"] = 0.0
    config["train"].update(steps=2, eval_every=1)
    toml = tmp_path / "pipeline.toml"
    toml.write_text(dumps(config))
    proc = subprocess.run([sys.executable, "-m", "registry_core", "run", str(toml), "--out", "run"],
                          capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "note: data `zarr-chips` has no 'val' split: validation and the evaluators (reconstruction) skipped" \
        in proc.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["step"] == 2 and summary["val"] is None and summary["evaluators"] == {}
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert not any(k.startswith("val_") for r in records for k in r)
