"""`run` through the real CLI when it is interrupted, and when its run folder holds a hostile checkpoint.

- Ctrl-C (SIGINT to the process group, as a terminal sends it) in the middle of training exits 130 with one
  ``error: interrupted`` line, leaves ``checkpoints/last.pt`` loadable, and ``run FILE --out DIR --resume``
  continues from it (the steps logged up to the checkpoint are kept, not retrained).
- A ``checkpoints/last.pt`` that is a pickle whose payload would run code is refused by ``run --resume`` with one
  ``error:`` line, the payload never runs and the run folder is left as it was.

The toy plugin of tests/pipeline stands in for a real stack: a training step takes milliseconds.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from registry_core.pipeline._toml import dumps
from registry_core.testing import one_error_line, run_cli, sigint_as_in_a_terminal
from registry_core.training import load_checkpoint

pytestmark = pytest.mark.usefixtures("toy_registry")


def _cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "REGISTRY_CORE_DEBUG"}




def _wait_until(done: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, what: str,
                timeout: float = 120.0) -> None:
    """Poll ``done`` until it holds; fail (with the command's stderr) if the command ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not done():
        if proc.poll() is not None:
            pytest.fail(f"the command ended (exit {proc.returncode}) before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s:\n{log.read_text()}")
        time.sleep(0.01)


def _assert_one_interrupted_line(code: int, stderr: str) -> None:
    """Exit 130, no traceback, and exactly one ``error:`` line, the last one, saying it was interrupted
    (progress lines before it are fine)."""
    assert code == 130, stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    assert errors[0].startswith("error: interrupted"), stderr


def _records(metrics: Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl``; a line the interrupt cut short is skipped, as resume drops it."""
    records = []
    for line in metrics.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def test_ctrl_c_mid_run_exits_130_and_the_run_resumes_from_its_checkpoint(good: dict, tmp_path: Path) -> None:
    good["train"].update(steps=100_000, checkpoint_every=10, log_every=10)  # far more steps than the test waits for
    (tmp_path / "toy.toml").write_text(dumps(good))
    run = tmp_path / "r"
    checkpoint = run / "checkpoints" / "last.pt"
    log = tmp_path / "run.stderr"
    with log.open("wb") as err, sigint_as_in_a_terminal():
        # its own session: Ctrl-C goes to the terminal's whole foreground process group, so we signal the group
        proc = subprocess.Popen([sys.executable, "-m", "registry_core", "run", "toy.toml", "--out", "r"], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=err, env=_cli_env(), start_new_session=True)
    try:
        _wait_until(checkpoint.is_file, proc, log, "a first checkpoint")
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _assert_one_interrupted_line(proc.returncode, log.read_text())

    step = int(load_checkpoint(checkpoint)["step"])  # loadable: a trainer checkpoint, whole
    assert step >= 10 and step % 10 == 0
    before = [r for r in _records(run / "metrics.jsonl") if r["step"] <= step]
    assert before, "the steps up to the checkpoint were logged"

    resumed = run_cli("run", "toy.toml", "--out", "r", "--resume", "--steps", str(step + 10), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"trained {step + 10} steps into r" in resumed.stdout
    assert "error:" not in resumed.stderr and "no checkpoint at" not in resumed.stderr, resumed.stderr
    assert int(load_checkpoint(checkpoint)["step"]) == step + 10
    after = _records(run / "metrics.jsonl")
    assert after[: len(before)] == before  # continued from the checkpoint: its log kept as it was
    logged = [r["step"] for r in after if "loss" in r]
    assert logged == list(range(10, step + 11, 10))  # each logged step once, up to the new end


class _TouchOnLoad:
    """Pickles as ``pathlib.Path.touch(marker)``: loading it runs code, as a hostile checkpoint would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (self.marker,))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_checkpoint_that_is_a_hostile_pickle_is_refused_by_resume_and_never_runs(good: dict, tmp_path: Path) -> None:
    good["train"].update(steps=4, checkpoint_every=2, log_every=2)
    (tmp_path / "toy.toml").write_text(dumps(good))
    first = run_cli("run", "toy.toml", "--out", "r", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    checkpoint = tmp_path / "r" / "checkpoints" / "last.pt"
    marker = tmp_path / "payload-ran"
    real = load_checkpoint(checkpoint)
    torch.save({**real, "payload": _TouchOnLoad(marker)}, checkpoint)  # a trainer checkpoint plus the payload
    assert not marker.exists()
    before = _snapshot(tmp_path / "r")

    line = one_error_line(run_cli("run", "toy.toml", "--out", "r", "--resume", "--steps", "8", cwd=tmp_path), 1)
    assert line.startswith("error: checkpoint r/checkpoints/last.pt was refused: it names the Python object "), line
    assert not marker.exists(), "the checkpoint's pickle ran"
    assert _snapshot(tmp_path / "r") == before  # refused before anything was trained or written
    assert "\x1b" not in line, f"the error line carries terminal escape codes: {line!r}"

    torch.load(checkpoint, weights_only=False)  # the payload is real: a plain unpickling runs it
    assert marker.exists()
