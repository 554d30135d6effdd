"""Progress as ingest and predict report it: off a terminal a plain line at each tenth of the work reached, on one a
bar that ends its line; the ingest's reader threads follow the usable cores (not the machine's) unless told."""

from __future__ import annotations

import io
from pathlib import Path

import dask.config
import pytest

from registry_core.cores import usable_cores
from registry_core.testing import run_cli
from registry_gfm.dask_runtime import local_threads
from registry_gfm.progress import progress_bar

ROOT = Path(__file__).resolve().parents[4]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(total: int, steps: list[int]) -> list[str]:
    stream = io.StringIO()
    with progress_bar(total, "work", "unit", stream=stream) as bar:
        for n in steps:
            bar.update(n)
    return stream.getvalue().splitlines()


def test_off_a_terminal_a_line_at_each_tenth_reached() -> None:
    lines = _lines(56, [1] * 56)
    assert [line.split("(")[1] for line in lines] == ["10%)", "21%)", "30%)", "41%)", "50%)", "60%)", "71%)", "80%)",
                                                      "91%)", "100%)"]
    assert lines[0] == "work: 6/56 units (10%)" and lines[-1] == "work: 56/56 units (100%)"


def test_few_units_or_big_steps_print_a_line_per_step_that_reaches_a_new_tenth() -> None:
    assert _lines(3, [1, 1, 1]) == ["work: 1/3 units (33%)", "work: 2/3 units (66%)", "work: 3/3 units (100%)"]
    assert _lines(100, [45, 4, 51]) == ["work: 45/100 units (45%)", "work: 100/100 units (100%)"]
    assert _lines(0, []) == []


def test_a_bar_on_a_terminal_ends_its_line_and_quiet_prints_nothing() -> None:
    term = Terminal()
    with progress_bar(4, "predict", "block", stream=term) as bar:
        bar.update(4)
    assert "4/4" in term.getvalue() and term.getvalue().endswith("\n")  # what follows starts on its own line
    quiet = Terminal()
    with progress_bar(4, "predict", "block", enabled=False, stream=quiet) as bar:
        bar.update(4)
    assert quiet.getvalue() == ""


def test_the_reader_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert (local_threads("threads", cores=3).count, local_threads("threads", cores=3).source) == \
        (6, "default: two per usable core")
    assert local_threads("synchronous", cores=3).count == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert (local_threads("threads", cores=8).count, local_threads("threads", cores=8).source) == (2, "OMP_NUM_THREADS")
    with dask.config.set(num_workers=5):
        assert local_threads("threads", cores=8).describe("dask reader") == \
            "threads: 5 dask reader thread(s) on 8 usable core(s) (dask's num_workers setting)"


def test_the_example_ingest_logs_its_threads_and_a_line_at_each_tenth(tmp_path: Path) -> None:
    out = run_cli("ingest", "examples/lsat7-ingest.toml", "--set", f"data.store={tmp_path / 'cube.zarr'}", cwd=ROOT,
                  env={"OMP_NUM_THREADS": "1"})  # stderr is a pipe here, as in a log file or CI
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stderr.splitlines()
    start = lines.index(f"threads: 1 dask reader thread(s) on {usable_cores()} usable core(s) (OMP_NUM_THREADS)")
    assert lines[start + 1 : start + 11] == [f"ingest cube.zarr: {n}/56 regions ({p}%)" for n, p in [
        (6, 10), (12, 21), (17, 30), (23, 41), (28, 50), (34, 60), (40, 71), (45, 80), (51, 91), (56, 100)]]
    assert "\r" not in out.stderr
