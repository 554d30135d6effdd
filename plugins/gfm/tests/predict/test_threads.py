"""predict's threads: torch's per model call and dask's chosen together from the usable cores (``--threads``, then
OMP_NUM_THREADS), printed as one ``threads:`` line; at most cores / threads model calls at once; ``local:N`` workers
get their torch threads; the progress lines end before the summary line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import zarr
from rasterio.transform import Affine

from registry_core.cores import usable_cores
from registry_core.testing import one_error_line, run_cli
from registry_gfm.predict import (
    PredictError,
    PredictThreads,
    choose_predict_threads,
    open_scene,
    predict_blocks,
    predict_to_file,
)

CORES = usable_cores()
ONE = "default: one thread per model call, a call per usable core"
SYNCHRONOUS = "default: every usable core to the one model call"
SHARED = "default: the usable cores shared by the worker processes"


@pytest.mark.parametrize(("requested", "omp", "scheduler", "cores", "blocks", "want"), [
    (None, None, "threads", 2, None, (1, 2, 2, 0, ONE)),
    (None, None, "threads", 16, 400, (1, 16, 16, 0, ONE)),
    (None, None, "threads", 2, 1, (2, 1, 2, 0, "default: 1 block(s) share the usable cores")),
    (None, None, "threads", 8, 3, (2, 4, 8, 0, "default: 3 block(s) share the usable cores")),
    (1, None, "threads", 2, 1, (1, 2, 2, 0, "--threads")),
    (3, None, "threads", 8, None, (3, 2, 8, 0, "--threads")),
    (4, None, "threads", 2, None, (4, 1, 2, 0, "--threads")),  # more than the cores: as asked, one call at a time
    (None, "1", "threads", 4, 1, (1, 4, 4, 0, "OMP_NUM_THREADS")),
    (2, "1", "threads", 4, None, (2, 2, 4, 0, "--threads")),
    (None, None, "synchronous", 4, None, (4, 1, 1, 0, SYNCHRONOUS)),
    (None, None, "local:2", 8, None, (4, 1, 1, 2, SHARED)),
    (None, None, "local:4", 2, None, (1, 1, 1, 4, SHARED)),
    (2, None, "local:3", 8, None, (2, 1, 1, 3, "--threads")),
])
def test_the_choice(monkeypatch: pytest.MonkeyPatch, requested: int | None, omp: str | None, scheduler: str,
                    cores: int, blocks: int | None, want: tuple[int, int, int, int, str]) -> None:
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    choice = choose_predict_threads(requested, scheduler, cores=cores, blocks=blocks)
    assert choice is not None
    assert (choice.torch, choice.calls, choice.dask, choice.workers, choice.source) == want
    assert choice.torch * choice.calls <= max(cores, choice.torch)  # torch never has more threads than the cores


def test_a_cluster_given_by_address_keeps_its_own_threads() -> None:
    assert choose_predict_threads(None, "tcp://127.0.0.1:8786") is None
    with pytest.raises(PredictError, match=r"^--threads applies to a predict on this machine; the workers of "
                                           r"--scheduler tcp://127\.0\.0\.1:8786 keep their own threads"):
        choose_predict_threads(2, "tcp://127.0.0.1:8786")


class Overlaps:
    """An identity tile model that notes the most of its calls that ran at once (each call lingers a moment, so
    calls that may overlap do)."""

    bands = ("red",)
    channels = factor = multiple = 1

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.most = 0

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.005)
        with self.lock:
            self.running -= 1
        return tiles.astype(np.float32)


def write_red(path: Path, height: int = 150, width: int = 130) -> Path:
    data = (np.arange(height * width, dtype=np.float32).reshape(1, height, width) % 251) + 1
    profile = {"driver": "GTiff", "dtype": "float32", "count": 1, "height": height, "width": width,
               "crs": "EPSG:32633", "transform": Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 5000000.0)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.set_band_description(1, "red")
    return path


@pytest.mark.parametrize("calls", [1, 2])
def test_model_calls_at_once_stay_within_the_gate(calls: int, tmp_path: Path) -> None:
    scene = open_scene(write_red(tmp_path / "red.tif"), ["red"])
    model = Overlaps()
    gated = predict_blocks(scene, model, tile=32, overlap=8, block_size=32, batch_size=4, calls=calls)
    out = gated.compute(scheduler="threads", num_workers=4)
    assert 1 <= model.most <= calls
    free = predict_blocks(scene, Overlaps(), tile=32, overlap=8, block_size=32, batch_size=4)
    assert np.array_equal(out, free.compute(scheduler="threads", num_workers=4))  # the gate changes no pixel


def test_one_blocks_calls_use_every_slot_of_the_gate(tmp_path: Path) -> None:
    # a single block (one tile task): its calls run on the gate's two threads at once, not one after another, so the
    # last block of a scene does not leave a core idle; its output is the same as without a gate
    scene = open_scene(write_red(tmp_path / "red.tif"), ["red"])
    model = Overlaps()
    out = predict_blocks(scene, model, tile=32, overlap=8, block_size=256, batch_size=2, calls=2).compute(
        scheduler="threads", num_workers=1)
    assert model.most == 2
    free = predict_blocks(scene, Overlaps(), tile=32, overlap=8, block_size=256, batch_size=2)
    assert np.array_equal(out, free.compute(scheduler="synchronous"))


def _progress(lines: list[str], label: str, unit: str) -> list[tuple[int, int, int]]:
    """(done, total, percent) of each progress line ``LABEL: DONE/TOTAL UNITs (P%)``."""
    pattern = re.compile(rf"{re.escape(label)}: (\d+)/(\d+) {unit}s \((\d+)%\)")
    return [(int(m[1]), int(m[2]), int(m[3])) for m in map(pattern.fullmatch, lines) if m]


def test_predict_prints_its_threads_and_ends_its_progress_lines_before_the_summary(mae_run: Path, lsat7_store: Path,
                                                                                   tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "registry_core", "predict", str(mae_run), "--input", str(lsat7_store),
                          "--output", str(tmp_path / "emb.tif"), "--embeddings", "--tile", "32", "--overlap", "8",
                          "--block-size", "128", "--threads", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
                         env={**os.environ, "OMP_NUM_THREADS": ""})  # stderr and stdout in one log, as `2>&1`
    assert out.returncode == 0, out.stdout[-3000:]
    assert "\r" not in out.stdout  # no bar redraws in a log
    lines = out.stdout.splitlines()
    first = lines.index(f"threads: torch 1 per model call, {CORES} call(s) at a time, {CORES} dask thread(s), on "
                        f"{CORES} usable core(s) (--threads)")
    progress = _progress(lines, "predict", "block")
    assert len(progress) == 10 and progress[-1] == (16, 16, 100)  # 56 x 62 px of blocks of 16: one line per tenth
    assert [p // 10 for _, _, p in progress] == list(range(1, 11))
    assert lines[first + 1 : first + 11] == [f"predict: {d}/{t} blocks ({p}%)" for d, t, p in progress]
    assert lines[first + 11].startswith(f"wrote {tmp_path / 'emb.tif'} (")  # a line of its own, after the last


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_a_scene_of_one_block_still_reports_it(scheduler: str, capsys: pytest.CaptureFixture[str]) -> None:
    """dask fuses the write of a one-block graph into its final task, whose key is not the block's: the progress
    still ends at 1/1, as a scene of many blocks does (it used to stay silent off a terminal and at 0/1 on one)."""
    import dask.array as da

    from registry_gfm.dask_runtime import run_blocks

    for blocks in (1, 3):
        writes = da.ones((1, blocks, 1), chunks=1, dtype=np.int64)
        assert run_blocks(writes + 1, scheduler, progress=True) == 2 * blocks
        lines = capsys.readouterr().err.splitlines()
        assert _progress(lines, "predict", "block")[-1] == (blocks, blocks, 100)


@pytest.mark.parametrize(("omp", "want"), [
    ("1", {"torch": 1, "calls": CORES, "dask": CORES, "workers": 0, "cores": CORES, "source": "OMP_NUM_THREADS"}),
    ("", {"torch": CORES, "calls": 1, "dask": CORES, "workers": 0, "cores": CORES,  # 443 x 489 px: one block
          "source": "default: 1 block(s) share the usable cores"}),
])
def test_predict_json_records_its_threads(omp: str, want: dict[str, object], mae_run: Path, lsat7_store: Path,
                                          tmp_path: Path) -> None:
    out = run_cli("predict", str(mae_run), "--input", str(lsat7_store), "--output", str(tmp_path / "emb.zarr"),
                  "--embeddings", "--tile", "32", "--overlap", "8", "--quiet", "--json", env={"OMP_NUM_THREADS": omp})
    assert out.returncode == 0, out.stderr
    assert "threads:" not in out.stderr  # --quiet: no threads line, no progress
    assert json.loads(out.stdout)["threads"] == want


def test_threads_below_one_are_one_error_line(mae_run: Path, lsat7_store: Path, tmp_path: Path) -> None:
    out = run_cli("predict", str(mae_run), "--input", str(lsat7_store), "--output", str(tmp_path / "o.tif"),
                  "--threads", "0")
    assert one_error_line(out) == "error: --threads 0 must be at least 1 (torch threads per model call)"


class TorchThreads:
    """A tile model whose output is the number of torch threads of the process that runs it."""

    bands = ("red",)
    channels = factor = multiple = 1

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        import torch

        return np.full(tiles.shape, torch.get_num_threads(), np.float32)


@pytest.mark.slow
@pytest.mark.skipif(CORES < 2, reason="torch (MKL) gives a worker no more threads than cores; dask's default is 1")
def test_local_workers_get_the_torch_threads_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the worker processes cannot import this module
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[4]))
    scene = open_scene(write_red(tmp_path / "red.tif"), ["red"])
    plan = PredictThreads(torch=2, calls=1, dask=1, workers=2, cores=CORES, source="test")
    predict_to_file(scene, TorchThreads(), tmp_path / "out.zarr", tile=32, overlap=8, block_size=64,
                    scheduler="local:2", threads=plan)
    assert np.unique(np.asarray(zarr.open_group(str(tmp_path / "out.zarr"), mode="r")["image"][0])).tolist() == [2.0]
