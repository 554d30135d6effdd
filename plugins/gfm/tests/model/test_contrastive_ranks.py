"""``contrastive`` under DDP: 2 ranks x B samples give the losses and gradients of 1 rank x 2B, because each rank's
negatives are every rank's views (gathered, with gradients back to the rank that made them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "contrastive_ranks.py"


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def _train(out: Path, ranks: int, *args: str) -> list[dict[str, float]]:
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks)]
              if ranks > 1 else [sys.executable])
    proc = subprocess.run([*launch, str(SCRIPT), str(out), *args], env=_env(), capture_output=True, text=True,
                          timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: r[k] for k in ("step", "loss", "grad_norm", "pairs")} for r in records]


@pytest.mark.slow
def test_two_ranks_see_the_negatives_of_the_whole_batch(tmp_path: Path) -> None:
    one = _train(tmp_path / "one", 1)
    two = _train(tmp_path / "two", 2)
    assert [r["pairs"] for r in one] == [4, 8, 8]  # step 1: rank 1's four samples have no valid pixel
    assert [r["pairs"] for r in two] == [r["pairs"] for r in one]
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5), (a, b)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-5), (a, b)
    # Each rank's own views alone as negatives (as before): step 1 agrees only because rank 1 had no pair then.
    local = _train(tmp_path / "local", 2, "--local-negatives")
    assert local[0]["loss"] == pytest.approx(one[0]["loss"], rel=1e-5)
    assert all(abs(b["loss"] - a["loss"]) > 1e-2 for a, b in zip(one[1:], local[1:]))
