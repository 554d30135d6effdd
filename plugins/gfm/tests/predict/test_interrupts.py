"""``predict`` through the real CLI when it is interrupted or killed, and ``run`` given hostile Prithvi weights.

- Ctrl-C (SIGINT to the process group, as a terminal sends it) while blocks are being written exits 130 with one
  ``error: interrupted`` line and leaves nothing under the final ``--output`` name, and no hidden staging
  (``.NAME.*``: the staging store, the temporary output, the writer's lock file) beside it.
- ``kill -9`` while blocks are being written leaves nothing under the final name (hidden staging may remain);
  the next predict to the same output is not blocked, and (once landed) sweeps what the killed one left.
- ``run`` of a pipeline whose ``prithvi`` weights file is a pickle that would run code refuses it in one line,
  and the payload never runs.

A predict is slowed by its own options, not by sleeps: 16-pixel tiles, one tile per batch and 64-pixel blocks
over the 443 x 489 Landsat 7 scene take several seconds more than the first block does, and a block's compute
(81 forward passes) takes far longer than writing it. The scene is a GeoTIFF (read with GDAL), so the only zarr
operations in flight are the block writes. Ctrl-C is sent once a block's last chunk is wholly on disk, so it
lands while the next block is read and computed; an interrupt that lands while a chunk is being written is
``test_ctrl_c_while_a_block_is_being_written_leaves_no_staging``'s case.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine

from registry_core.pipeline._toml import dumps
from registry_core.testing import one_error_line, run_cli, sigint_as_in_a_terminal
from registry_gfm.cube.reader import open_cube

pytestmark = pytest.mark.usefixtures("torch_one_thread")

LSAT7_BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]
#: Options that make a predict of the datacube take seconds after its first block (see the module docstring).
SLOW = ["--tile", "16", "--overlap", "8", "--block-size", "64", "--batch-size", "1"]


@pytest.fixture(scope="module")
def scene(lsat7_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The datacube's scene as a 6-band GeoTIFF (bands named as the model's): read with GDAL, so while predict runs
    the only zarr operations (which run on zarr's own threads) are the writes of its blocks."""
    import xarray as xr

    info = open_cube(lsat7_store)
    image = np.asarray(xr.open_zarr(lsat7_store)["image"][0])
    path = tmp_path_factory.mktemp("scene") / "lsat7.tif"
    profile = {"driver": "GTiff", "dtype": str(image.dtype), "count": image.shape[0], "height": image.shape[1],
               "width": image.shape[2], "crs": info.crs_wkt, "transform": Affine(*info.transform), "nodata": 0,
               "tiled": True}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(image)
        for i, name in enumerate(info.band_names, start=1):
            dst.set_band_description(i, name)
    return path


def _cli_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "REGISTRY_CORE_DEBUG"}, **extra}




class Predict:
    """``python -m registry_core predict`` started in its own process group, its stderr kept in a file."""

    def __init__(self, run: Path, scene: Path, out: Path, *options: str, env: dict[str, str] | None = None) -> None:
        self.out = out
        self.log = out.with_name(f"predict-{out.name}.stderr")
        args = ["predict", str(run), "--input", str(scene), "--output", str(out), "--embeddings", "--quiet", *options]
        with self.log.open("wb") as err, sigint_as_in_a_terminal():
            self.proc = subprocess.Popen([sys.executable, "-m", "registry_core", *args], cwd=out.parent,
                                         stdout=subprocess.DEVNULL, stderr=err, env=env or _cli_env(),
                                         start_new_session=True)

    def wait_until(self, done: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if self.proc.poll() is not None:
                pytest.fail(f"predict ended (exit {self.proc.returncode}) before {what}:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"no {what} within {timeout} s:\n{self.log.read_text()}")
            time.sleep(0.01)

    def wait_for_chunk(self, array: str) -> None:
        """Until a chunk of ``array`` (``image``, then ``valid``: a block writes both) is wholly on disk in the
        staging store; the store's metadata alone is not enough."""
        self.wait_until(lambda: chunk_on_disk(self.out, array), f"a whole {array} chunk in the staging store")

    def signal(self, sig: signal.Signals) -> int:
        """Send ``sig`` to the whole process group (Ctrl-C reaches every process of the foreground group)."""
        try:
            os.killpg(self.proc.pid, sig)
            return self.proc.wait(timeout=60)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    @property
    def stderr(self) -> str:
        return self.log.read_text()


def beside(out: Path) -> list[str]:
    """What the folder holds under the output's name or a hidden ``.NAME.*`` name."""
    return sorted(p.name for p in out.parent.iterdir() if p.name == out.name or p.name.startswith(f".{out.name}."))


def chunk_on_disk(out: Path, array: str) -> bool:
    """Whether a staging store beside ``out`` holds a whole chunk of ``array`` (zarr writes ``NAME.HEX.partial``
    first, then renames it)."""
    try:
        return any(f.is_file() and ".partial" not in f.name for d in out.parent.glob(f".{out.name}.*") if d.is_dir()
                   for f in (d / array / "c").rglob("*"))
    except OSError:  # a folder removed while we looked
        return False


def assert_one_interrupted_line(code: int, stderr: str) -> None:
    assert code == 130, stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    assert errors[0].startswith("error: interrupted"), stderr


def assert_a_finished_prediction(out: Path, scene: Path) -> None:
    """``out`` holds the whole embedding raster: 16 bands at 1/8 of the scene's size, in the scene's CRS."""
    with rasterio.open(scene) as src:
        epsg = src.crs.to_epsg()
    if out.suffix == ".tif":
        with rasterio.open(out) as src:
            assert (src.count, *src.shape) == (16, 56, 62)
            assert src.crs.to_epsg() == epsg
            assert np.isfinite(src.read()).any()
    else:
        cube = open_cube(out)  # complete, or it would refuse
        assert cube.shape == (1, 16, 56, 62) and cube.epsg == epsg


@pytest.mark.parametrize("name", ["map.tif", "map.zarr"])
def test_ctrl_c_mid_predict_exits_130_and_leaves_no_output_and_no_staging(mae_run: Path, scene: Path,
                                                                         tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    predict = Predict(mae_run, scene, out, *SLOW, "--scheduler", "synchronous")
    predict.wait_for_chunk("valid")  # a whole block is written; the next one is computing
    code = predict.signal(signal.SIGINT)
    assert_one_interrupted_line(code, predict.stderr)
    assert beside(out) == []  # no output, no staging store, no temporary output, no lock file


#: A slow file system for the predict subprocess (sitecustomize.py on its PYTHONPATH), as a loaded network file
#: system is: every write of a ``valid`` chunk (a block's last) first announces itself with a file in SLOW_FS_EVENTS,
#: outside the store, then waits SLOW_FS_DELAY seconds before it lands.
SLOW_FS = '''
import os
import time
from pathlib import Path

import zarr.storage._local as _local

_put = _local._put


def _slow_put(path, value, exclusive=False):
    if "valid" in path.parts and "c" in path.parts:
        (Path(os.environ["SLOW_FS_EVENTS"]) / f"{os.getpid()}-{time.monotonic_ns()}").touch()
        time.sleep(float(os.environ["SLOW_FS_DELAY"]))
    return _put(path, value, exclusive=exclusive)


_local._put = _slow_put
'''


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_ctrl_c_while_a_block_is_being_written_leaves_no_staging(mae_run: Path, scene: Path, tmp_path: Path,
                                                                 scheduler: str) -> None:
    """The interrupt lands while a block's chunk write is under way (zarr writes on its own threads, and dask's
    worker threads run on after the main thread is interrupted): once predict has exited, its staging store must
    still be gone."""
    shim, events = tmp_path / "slow-fs", tmp_path / "slow-fs-events"
    shim.mkdir()
    events.mkdir()
    (shim / "sitecustomize.py").write_text(SLOW_FS)
    path = os.pathsep.join(p for p in (str(shim), os.environ.get("PYTHONPATH")) if p)
    out = tmp_path / "map.tif"
    predict = Predict(mae_run, scene, out, *SLOW, "--scheduler", scheduler,
                      env=_cli_env(PYTHONPATH=path, SLOW_FS_EVENTS=str(events), SLOW_FS_DELAY="2"))
    predict.wait_until(lambda: any(events.iterdir()), "a chunk write under way")  # and it lands 2 s from then
    code = predict.signal(signal.SIGINT)
    problems = []  # both properties are checked, so a failure names every one that does not hold
    try:
        assert_one_interrupted_line(code, predict.stderr)
    except AssertionError:
        problems.append(f"exit {code} and stderr {predict.stderr!r}: not exit 130 with one 'error: interrupted' line")
    if beside(out):
        problems.append(f"left beside the output: {beside(out)}")
    assert not problems, "\n".join(problems)


def _killed_mid_predict(mae_run: Path, scene: Path, out: Path) -> tuple[int, list[str]]:
    """A predict into ``out`` killed with SIGKILL once a block is on disk: its pid and what it left beside ``out``."""
    predict = Predict(mae_run, scene, out, *SLOW, "--scheduler", "synchronous")
    predict.wait_for_chunk("image")
    assert predict.signal(signal.SIGKILL) == -signal.SIGKILL
    return predict.proc.pid, beside(out)


def _staging_of(pid: int, out: Path) -> re.Pattern[str]:
    """The hidden names a predict with ``pid`` writing ``out`` may leave when killed outright."""
    return re.compile(rf"\.{re.escape(out.name)}\.((tmp|blocks\.zarr)-{pid}-[0-9a-f]{{8}}|registry-core\.lock)")


@pytest.mark.parametrize("name", ["map.tif", "map.zarr"])
def test_sigkill_mid_predict_leaves_nothing_under_the_final_name(mae_run: Path, scene: Path, tmp_path: Path,
                                                                 name: str) -> None:
    out = tmp_path / name
    pid, left = _killed_mid_predict(mae_run, scene, out)
    assert not out.exists() and not out.is_symlink()
    assert all(_staging_of(pid, out).fullmatch(n) for n in left), left  # hidden staging only
    again = run_cli("predict", str(mae_run), "--input", str(scene), "--output", str(out), "--embeddings",
                    "--quiet", cwd=tmp_path)  # not blocked by what the killed predict left (its lock file too)
    assert again.returncode == 0, again.stderr
    assert_a_finished_prediction(out, scene)


@pytest.mark.parametrize("name", ["map.tif", "map.zarr"])
def test_next_predict_sweeps_staging_a_killed_predict_left(mae_run: Path, scene: Path, tmp_path: Path,
                                                           name: str) -> None:
    out = tmp_path / name
    pid, left = _killed_mid_predict(mae_run, scene, out)
    staged = [n for n in left if _staging_of(pid, out).fullmatch(n) and not n.endswith(".registry-core.lock")]
    assert staged, f"the killed predict left no staging to sweep: {left}"
    again = run_cli("predict", str(mae_run), "--input", str(scene), "--output", str(out), "--embeddings",
                    "--quiet", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_a_finished_prediction(out, scene)
    assert beside(out) == [name]  # the killed predict's staging is gone; only the output remains


# -- Prithvi weights that are a pickle which would run code --------------------------------------------------


class _TouchOnLoad:
    """Pickles as ``pathlib.Path.touch(marker)``: loading it runs code, as a hostile checkpoint would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (self.marker,))


def _hostile_weights(path: Path, marker: Path, fmt: str) -> Path:
    """Prithvi-looking weights (a state dict) carrying the payload, as torch.save writes (zip) or the legacy pickle."""
    state = {"patch_embed.proj.weight": torch.zeros(64, 6, 1, 16, 16), "payload": _TouchOnLoad(marker)}
    if fmt == "zip":
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps(state, protocol=2))
    return path


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_run_refuses_prithvi_weights_that_are_a_hostile_pickle(lsat7_store: Path, tmp_path: Path, fmt: str) -> None:
    marker = tmp_path / "payload-ran"
    weights = _hostile_weights(tmp_path / "Prithvi_100M.pt", marker, fmt)
    config = {
        "data": {"use": "zarr-chips", "store": str(lsat7_store), "chip_size": 32, "bands": LSAT7_BANDS},
        "tokenizer": {"use": "patch", "patch_size": 16},
        "positional": {"use": "sincos-3d"},
        "backbone": {"use": "vit", "embed_dim": 64, "depth": 2, "heads": 4},
        "objective": {"use": "mae", "decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 4},
        "weights": {"use": "prithvi", "path": str(weights), "fills": "encoder+decoder", "heads": 4,
                    "decoder_heads": 4},
        "train": {"steps": 2, "batch_size": 4},
    }
    (tmp_path / "prithvi.toml").write_text(dumps(config))
    line = one_error_line(run_cli("run", "prithvi.toml", "--out", "r", cwd=tmp_path), 1)
    assert line.startswith(f"error: prithvi: refused to load {weights}: it is a pickle that would build Python "
                           "objects beyond tensors (it could run code when loaded)"), line
    assert not marker.exists(), "the weights' pickle ran"
    assert not (tmp_path / "r").exists()  # refused before a run folder was made

    if fmt == "zip":  # the payload is real: a plain unpickling runs it
        torch.load(weights, weights_only=False)
    else:
        with weights.open("rb") as f:
            pickle.load(f)
    assert marker.exists()
