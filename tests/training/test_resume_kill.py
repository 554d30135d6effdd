"""Exact resume: a run killed with SIGKILL after a checkpoint, then resumed, repeats an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from registry_core.training import load_checkpoint

TINY = Path(__file__).parent / "trainer_tiny.py"


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _run(out: Path, *args: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, str(TINY), str(out), *args], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _metrics(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _losses(out: Path) -> dict[int, float]:
    return {int(str(r["step"])): float(str(r["loss"])) for r in _metrics(out) if "loss" in r}


def _wait_for_step(out: Path, step: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"training exited early: {log.read_text()}"
        path = out / "metrics.jsonl"
        if path.exists() and any(f'"step": {step},' in line for line in path.read_text().splitlines()):
            return
        time.sleep(0.05)
    raise AssertionError(f"step {step} never showed up in {path}")


def test_sigkill_after_checkpoint_then_resume_repeats_losses_bit_for_bit(tmp_path: Path) -> None:
    common = ["--steps", "12", "--batch", "8", "--micro", "4", "--ckpt-every", "4"]
    reference = _run(tmp_path / "ref", *common)
    assert reference["step"] == 12

    out = tmp_path / "killed"
    # Blocks when step 8 asks for its first sample: the checkpoint of step 4 exists and steps 5-7 are logged.
    log = tmp_path / "killed.log"
    with log.open("w") as log_fh:
        proc = subprocess.Popen(
            [sys.executable, str(TINY), str(out), *common, "--stall-after", str(7 * 8)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=log_fh,
        )
    try:
        _wait_for_step(out, 7, proc, log)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 4
    assert max(_losses(out)) == 7  # steps past the checkpoint were logged before the kill

    resumed = _run(out, *common, "--resume")
    assert resumed["resumed_from"] == 4 and resumed["step"] == 12
    steps = [r["step"] for r in _metrics(out) if "loss" in r]
    assert steps == list(range(1, 13)), "metrics.jsonl must hold each step once after the resume"
    assert _losses(out) == _losses(tmp_path / "ref")  # exact float equality, step by step
    assert resumed["loss"] == reference["loss"]

    ref_weights = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")["model"]
    got_weights = load_checkpoint(out / "checkpoints" / "last.pt")["model"]
    assert ref_weights.keys() == got_weights.keys()
    assert all(torch.equal(ref_weights[k], got_weights[k]) for k in ref_weights)
