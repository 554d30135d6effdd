"""torch's threads per rank: the usable cores (affinity, cgroup quota) shared by the ranks, one left for the data
path; [train] threads and OMP_NUM_THREADS win; the choice is printed and recorded in summary.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from registry_core.training.threads import choose_threads, usable_cores

AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(("cpu_max", "want"), [
    ("max 100000\n", AFFINITY),
    ("50000 100000\n", 1),  # half a core: one
    ("150000 100000\n", min(AFFINITY, 2)),  # one and a half: two
    ("garbage", AFFINITY),
])
def test_usable_cores_honours_a_cgroup_quota(tmp_path: Path, cpu_max: str, want: int) -> None:
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert usable_cores(path) == want
    assert usable_cores(tmp_path / "missing") == AFFINITY


@pytest.mark.parametrize(("requested", "omp", "cores", "ranks", "torch", "source"), [
    (None, None, 2, 1, 1, "default: one core per rank left for data loading"),
    (None, None, 16, 1, 15, "default: one core per rank left for data loading"),
    (None, None, 16, 2, 7, "default: one core per rank left for data loading"),
    (None, None, 1, 1, 1, "default"),
    (None, None, 2, 4, 1, "default"),
    (None, "3", 2, 1, 3, "OMP_NUM_THREADS"),
    (4, "3", 2, 1, 4, "[train] threads"),
])
def test_the_choice(monkeypatch: pytest.MonkeyPatch, requested: int | None, omp: str | None, cores: int, ranks: int,
                    torch: int, source: str) -> None:
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    choice = choose_threads(requested, ranks, cores=cores)
    assert (choice.torch, choice.source) == (torch, source)


def test_a_run_prints_and_records_its_threads(tmp_path: Path) -> None:
    from registry_core.testing import run_cli

    toml = Path(__file__).resolve().parents[2] / "examples" / "gpt-tiny.toml"
    env = {"OMP_NUM_THREADS": ""}
    out = run_cli("run", str(toml), "--out", "r", "--steps", "2", "--set", "train.threads=1",
                  "--set", "train.eval_every=0", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert f"threads: torch 1 per rank, 1 rank(s) on {usable_cores()} usable core(s) ([train] threads)" in out.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["threads"] == {"torch": 1, "cores": usable_cores(), "ranks": 1, "source": "[train] threads"}


def test_the_setting_that_asked_is_named() -> None:
    assert choose_threads(3, cores=8).source == "[train] threads"
    assert choose_threads(3, cores=8, setting="--threads").describe().endswith("(--threads)")
