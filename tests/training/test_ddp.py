"""Two ranks through torchrun on CPU (gloo): the same losses as one rank with the same global batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TINY = Path(__file__).parent / "trainer_tiny.py"
COMMON = ["--steps", "8", "--batch", "8", "--ckpt-every", "4", "--dropout", "0", "--counts"]


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def _torchrun(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(TINY), str(out)]
    proc = subprocess.run([*cmd, *args], env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _single(out: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(TINY), str(out), *args], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def _losses(out: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def _counts(out: Path) -> list[dict[str, object]]:
    """The count metrics of every metrics.jsonl line (CountingModel's rows and kept, train and val)."""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: r[k] for k in ("step", "rows", "kept", "val_rows", "val_kept") if k in r} for r in records]


def _close(a: dict[int, float], b: dict[int, float]) -> None:
    assert a.keys() == b.keys()
    for step in a:
        assert a[step] == pytest.approx(b[step], rel=1e-5, abs=1e-6), f"step {step}: {a[step]} vs {b[step]}"


@pytest.mark.slow
def test_two_ranks_weigh_their_micro_batches_by_what_they_count(tmp_path: Path) -> None:
    """A loss averaged over a varying number of targets per rank and micro-batch: 2 ranks x 2 micro-batches give the
    losses of the whole batch on one rank (an equal-weight average of the four micro-batch means would not)."""
    weighted = ["--steps", "6", "--batch", "8", "--dropout", "0", "--weighted"]
    _single(tmp_path / "one", *weighted)
    _torchrun(tmp_path / "two", *weighted, "--micro", "2")
    _close(_losses(tmp_path / "two"), _losses(tmp_path / "one"))


@pytest.mark.slow
def test_two_ranks_match_one_rank_and_resume_across_rank_counts(tmp_path: Path) -> None:
    _single(tmp_path / "one", *COMMON)
    one = _losses(tmp_path / "one")

    # 2 ranks x micro-batch 2 x 2 accumulation steps = the same 8 samples per step (no_sync on the inner one).
    proc = _torchrun(tmp_path / "two", *COMMON, "--micro", "2")
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["world"] for r in lines] == [2], "only rank 0 reports"
    assert lines[0]["allreduce_calls"] == 8, "one gradient all-reduce per optimizer step, none on inner micro-steps"
    _close(_losses(tmp_path / "two"), one)
    # Counts are integers summed over micro-batches and ranks: the same as on one rank (8 rows a step, 16 in val).
    counts = _counts(tmp_path / "two")
    assert counts == _counts(tmp_path / "one")
    assert all(c["rows"] == 8 for c in counts if "rows" in c) and counts[-1]["val_rows"] == 16
    assert all(isinstance(v, int) for c in counts for v in c.values())
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["last.pt"]

    # A 1-rank run killed after its step-4 checkpoint resumes on 2 ranks and lands on the same losses.
    out = tmp_path / "one_then_two"
    killed = subprocess.Popen(
        [sys.executable, str(TINY), str(out), *COMMON, "--stall-after", str(5 * 8)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        metrics = out / "metrics.jsonl"
        while not (metrics.exists() and '"step": 5,' in metrics.read_text()):
            assert killed.poll() is None and time.monotonic() < deadline, "the 1-rank run did not reach step 5"
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.wait()
    proc = _torchrun(out, *COMMON, "--micro", "4", "--resume")
    assert "random states of 1 ranks" in proc.stderr  # the rank-count change is reported
    assert json.loads(proc.stdout.strip().splitlines()[-1])["resumed_from"] == 4
    _close(_losses(out), one)
