"""Under torchrun, a refusal on one rank ends every rank with the same one-line error, not a wait in a collective."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from registry_core import Registry
from registry_core.pipeline._toml import dumps


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def _registry_core(*args: str, cwd: Path, ranks: int = 1) -> subprocess.CompletedProcess[str]:
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks),
               "-m", "registry_core"] if ranks > 1 else [sys.executable, "-m", "registry_core"])
    # the timeout only guards against the hang this file is about: a refusal ends in seconds
    return subprocess.run([*launch, *args], capture_output=True, text=True, cwd=cwd, env=_env(), timeout=240,
                          check=False)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def trained(toy_registry: Registry, good: dict, tmp_path: Path) -> Path:
    """A finished one-rank run in tmp_path/run of the toy pipeline (tmp_path/toy.toml)."""
    good["train"].update(steps=4, checkpoint_every=2, log_every=1)
    (tmp_path / "toy.toml").write_text(dumps(good))
    done = _registry_core("run", "toy.toml", "--out", "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path / "run"


@pytest.mark.slow
def test_a_folder_that_holds_a_run_is_refused_by_every_rank(trained: Path) -> None:
    """Rank 0 prepares the folder and refuses it; rank 1 says the same instead of waiting for rank 0 to join."""
    before = _snapshot(trained)
    two = _registry_core("run", "toy.toml", "--out", "run", cwd=trained.parent, ranks=2)
    assert two.returncode != 0
    errors = _errors(two.stderr)
    assert len(errors) == 2 and errors[0] == errors[1], two.stderr[-3000:]
    assert "already holds a run" in errors[0] and "--resume" in errors[0]
    assert _snapshot(trained) == before


@pytest.mark.slow
def test_a_log_rank_0_cannot_read_ends_every_rank_on_resume(trained: Path) -> None:
    """On resume rank 0 rewrites metrics.jsonl; a log that is not text stops both ranks with rank 0's message
    (rank 1 would otherwise go on to its first gradient all-reduce and wait there)."""
    log = trained / "metrics.jsonl"
    log.write_bytes(log.read_bytes() + b"\xff\xfe not a record\n")
    before = _snapshot(trained)
    two = _registry_core("run", "toy.toml", "--out", "run", "--resume", "--steps", "8", cwd=trained.parent, ranks=2)
    assert two.returncode != 0
    errors = _errors(two.stderr)
    assert len(errors) == 2 and errors[0] == errors[1], two.stderr[-3000:]
    assert "run/metrics.jsonl line 5 is not UTF-8 text" in errors[0]
    assert _snapshot(trained) == before


def test_errors_cross_to_other_ranks_as_they_print() -> None:
    """What a failing rank sends the others rebuilds an error that prints the same (a ConfigError with its issues,
    an error that cannot be rebuilt as its message, a usage error still a usage error)."""
    from registry_core import ConfigError, ConfigIssue, UsageError
    from registry_core.training.distributed import RankFailed, _describe, _rebuild

    config = ConfigError([ConfigIssue("backbone", "depth", "must be >= 1"), ConfigIssue("train", "lr", "is NaN")])
    copy = _rebuild(_describe(config))
    assert type(copy) is ConfigError and str(copy) == str(config) and copy.issues == config.issues

    class Unbuildable(RuntimeError):
        def __init__(self, step: int, detail: str) -> None:
            super().__init__(f"step {step}: {detail}")

    odd = _rebuild(_describe(Unbuildable(3, "the loss is NaN")))
    assert isinstance(odd, RankFailed) and str(odd) == "step 3: the loss is NaN"
    usage = _rebuild(_describe(UsageError("give --out")))
    assert isinstance(usage, UsageError) and str(usage) == "give --out"
