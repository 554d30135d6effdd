"""Documented options of the imagery stack that must run as documented (issue 13, section 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from registry_core.pipeline._toml import dumps

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
        in proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["step"] == 2 and summary["val"] is None and summary["evaluators"] == {}
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert not any(k.startswith("val_") for r in records for k in r)


STRATA = str(Path(__file__).resolve().parents[3] / "tests" / "data" / "gfm_lsat7" / "strata.tif")
OBJECTIVES: dict[str, dict[str, Any]] = {
    "mae": {},
    "contrastive": {"objective": {"use": "contrastive"}},
    "finetune": {"objective": {"use": "finetune"}, "head": {"use": "segmentation", "channels": 8}},
}


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_imagery_val_loss_is_the_mean_of_a_direct_pass_and_counts_are_totals(
        objective: str, lsat7_store: Path, tmp_path: Path) -> None:
    """mae and contrastive report their loss as a metric too: it is not added to the loss a second time;
    their counts (masked_tokens, masked_pixels, pairs) are whole totals of the pass; batches weigh by the declared loss weight."""
    import torch
    from torch.utils.data import default_collate

    from registry_core import compose

    config = tiny_pipeline_config(lsat7_store, **OBJECTIVES[objective])
    if objective == "finetune":
        config["data"].update(labels=STRATA, num_classes=7, label_values=[1, 2, 3, 4, 5, 6, 7], min_labelled=0.3)
    pipeline = compose(config).build()
    trainer = pipeline.trainer(tmp_path / "run")
    got = trainer.evaluate()
    model, val = pipeline.model, trainer.val_data
    counts, weight_key = set(model.count_metrics), model.loss_weight
    model.eval()
    loss_sum, weight, totals = 0.0, 0.0, dict.fromkeys(counts, 0.0)
    with torch.no_grad():
        for start in range(0, len(val), trainer.micro):
            loss, metrics = model(default_collate([val[i] for i in range(start, min(start + trainer.micro, len(val)))]))
            w = float(metrics[weight_key]) if weight_key else float(min(trainer.micro, len(val) - start))
            loss_sum, weight = loss_sum + float(loss) * w, weight + w
            for key in counts:
                totals[key] += float(metrics[key])
    assert got["loss"] == pytest.approx(loss_sum / weight, rel=1e-5)
    for key in counts:
        assert got[key] == round(totals[key]) and isinstance(got[key], int)
    assert {"mae": {"masked_tokens", "masked_pixels"}, "contrastive": {"pairs"}, "finetune": set()}[objective] == counts
