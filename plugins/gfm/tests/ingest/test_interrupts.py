"""``ingest`` through the real CLI, interrupted with Ctrl-C: exit 130 with one ``error: interrupted`` line, the store
left incomplete but resumable (the same command finishes it without redoing the regions already written), and
the finished store equals an uninterrupted ingest.

The ingest is slowed by its own options: the Landsat 7 crop in 16-pixel chunks is 144 regions, each marked done
as it lands, so the interrupt arrives when the first region is marked and many are still to come.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from registry_core import get_registry
from registry_core.testing import run_cli, sigint_as_in_a_terminal
from registry_gfm.cube.store import MARKERS, IncompleteStoreError, open_datacube

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = ROOT / "examples" / "lsat7-ingest.toml"
CATALOG = ROOT / "tests" / "data" / "gfm_lsat7" / "stac" / "catalog.json"
#: The example ingest on the 192 x 192 crop of the scene, in 16-pixel chunks.
OVERRIDES = {"catalog": str(CATALOG), "collections": ["landsat7-crop"], "chunk_size": 16}




def ingest_args(store: str, scheduler: str) -> list[str]:
    sets = [f"data.catalog={CATALOG}", 'data.collections=["landsat7-crop"]', "data.chunk_size=16",
            f"data.store={store}", f"data.scheduler={scheduler}"]
    return ["ingest", str(EXAMPLE), *(arg for s in sets for arg in ("--set", s))]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same ingest, run once without interruption (in this process)."""
    store = tmp_path_factory.mktemp("crop") / "fresh.zarr"
    options = tomllib.loads(EXAMPLE.read_text())["data"]
    options.pop("use")
    options.update(OVERRIDES, store=str(store), scheduler="threads")
    get_registry().build("data_source", "stac-zarr", **options).prepare()
    return store


def _chunk_files(store: Path, t: int, i: int, j: int) -> list[Path]:
    return [store / "image" / "c" / str(t) / "0" / str(i) / str(j), store / "valid" / "c" / str(t) / str(i) / str(j)]


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_ctrl_c_mid_ingest_exits_130_and_the_same_command_finishes_the_store(uninterrupted: Path, tmp_path: Path,
                                                                            scheduler: str) -> None:
    store = tmp_path / "c.zarr"
    markers = store / MARKERS
    log = tmp_path / "ingest.stderr"
    env = {k: v for k, v in os.environ.items() if k != "REGISTRY_CORE_DEBUG"}
    with log.open("wb") as err, sigint_as_in_a_terminal():
        # its own session: Ctrl-C goes to the terminal's whole foreground process group, so we signal the group
        proc = subprocess.Popen([sys.executable, "-m", "registry_core", *ingest_args("c.zarr", scheduler)],
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (markers.is_dir() and os.listdir(markers)):
            if proc.poll() is not None:
                pytest.fail(f"the ingest ended (exit {proc.returncode}) before a region was done:\n{log.read_text()}")
            assert time.monotonic() < deadline, f"no region done within 120 s:\n{log.read_text()}"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    stderr = log.read_text()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and errors[0].startswith("error: interrupted"), stderr

    with pytest.raises(IncompleteStoreError):
        open_datacube(store)  # marked incomplete: nobody reads a half-ingested store
    done = [tuple(int(v) for v in name.split("-")) for name in os.listdir(markers)]
    assert done
    stamps = {p: p.stat().st_mtime_ns for r in done for p in _chunk_files(store, *r) if p.exists()}

    again = run_cli(*ingest_args("c.zarr", "threads"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("ingested data `gfm:stac-zarr` into c.zarr")
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # the regions done before were not redone
    assert not markers.exists()
    resumed, fresh = open_datacube(store).load(), xr.open_zarr(uninterrupted).load()
    for name in ("image", "valid", "time", "band", "x", "y"):
        np.testing.assert_array_equal(resumed[name].values, fresh[name].values)
    assert resumed.attrs == fresh.attrs


def test_a_ctrl_c_a_library_turned_into_its_own_error_is_still_an_interrupt() -> None:
    """Ctrl-C landing in rasterio's GDAL environment set-up once surfaced as `EnvError: No GDAL environment exists`
    (exit 1, "fix the input"): the ingest notes the signal and looks through the error's causes."""
    from registry_gfm.ingest.stac_zarr import _caused_by_interrupt, _noting_ctrl_c

    def cleanup_fails_during(interrupt: BaseException) -> RuntimeError:
        try:
            try:
                raise interrupt
            finally:
                raise RuntimeError("No GDAL environment exists")
        except RuntimeError as exc:
            return exc

    assert _caused_by_interrupt(cleanup_fails_during(KeyboardInterrupt()))
    assert not _caused_by_interrupt(cleanup_fails_during(ValueError("a bad asset")))
    with sigint_as_in_a_terminal():  # a CI runner may start the tests with SIGINT ignored: nothing to note then
        with _noting_ctrl_c() as noted:
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # the signal arrives before this ends
            assert noted == [True]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
