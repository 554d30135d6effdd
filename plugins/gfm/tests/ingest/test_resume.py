"""stac-zarr resume after a real SIGKILL, and ingest on dask.distributed (LocalCluster, scheduler address)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import xarray as xr

from registry_gfm.cube.store import MARKERS, IncompleteStoreError, open_datacube
from registry_gfm.ingest.stac_zarr import run_ingest

if TYPE_CHECKING:
    from tests.gfm.conftest import IngestCatalog

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


def options(catalog: Path, store: Path, **extra: Any) -> dict[str, Any]:
    return {"catalog": str(catalog), "collections": ["lsat7"], "assets": ["B1", "B2", "B3", "B4", "B5", "B7"],
            "cloud_mask": "qa_pixel", "store": str(store), "chunk_size": 32, **extra}


def assert_same_store(a: Path, b: Path) -> None:
    da, db = xr.open_zarr(a).load(), xr.open_zarr(b).load()
    np.testing.assert_array_equal(da["image"].values, db["image"].values)
    np.testing.assert_array_equal(da["valid"].values, db["valid"].values)
    for name in ("time", "band", "x", "y", "scale", "offset", "item_id"):
        np.testing.assert_array_equal(da[name].values, db[name].values)
    assert da.attrs == db.attrs


def _chunk_files(store: Path, t: int, i: int, j: int) -> list[Path]:
    return [store / "image" / "c" / str(t) / "0" / str(i) / str(j), store / "valid" / "c" / str(t) / str(i) / str(j)]


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_equals_an_uninterrupted_run(ingest_catalog: IngestCatalog,
                                                                   tmp_path: Path) -> None:
    store = tmp_path / "killed.zarr"
    opts = options(ingest_catalog.catalog_json, store, scheduler="synchronous")
    code = f"from registry_gfm.ingest.stac_zarr import run_ingest; run_ingest({json.dumps(opts)}, progress=False)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    markers = store / MARKERS
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"the ingest ended (rc {proc.returncode}) before it could be killed:\n{out}")
        if markers.is_dir() and len(os.listdir(markers)) >= 12:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with pytest.raises(IncompleteStoreError):
        open_datacube(store)
    done = [tuple(int(v) for v in name.split("-")) for name in os.listdir(markers)]
    total = 3 * 6 * 6
    assert 12 <= len(done) < total
    stamps = {p: p.stat().st_mtime_ns for r in done for p in _chunk_files(store, *r) if p.exists()}
    assert stamps  # finished regions have their chunks on disk (all-nodata chunks may be skipped by zarr)

    run_ingest(options(ingest_catalog.catalog_json, store, scheduler="threads"), progress=False)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished regions were not rewritten
    assert not markers.exists()
    open_datacube(store)  # complete now

    fresh = tmp_path / "fresh.zarr"
    run_ingest(options(ingest_catalog.catalog_json, fresh, scheduler="threads"), progress=False)
    assert_same_store(store, fresh)


@pytest.mark.slow
def test_two_worker_local_cluster_and_a_scheduler_address(ingest_catalog: IngestCatalog, tmp_path: Path) -> None:
    from distributed import LocalCluster

    threaded = tmp_path / "threads.zarr"
    run_ingest(options(ingest_catalog.catalog_json, threaded, chunk_size=64), progress=False)
    local = tmp_path / "local.zarr"
    run_ingest(options(ingest_catalog.catalog_json, local, chunk_size=64, scheduler="local:2"), progress=True)
    assert_same_store(threaded, local)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        remote = tmp_path / "address.zarr"
        run_ingest(options(ingest_catalog.catalog_json, remote, chunk_size=64, scheduler=cluster.scheduler_address),
                   progress=False)
    assert_same_store(threaded, remote)
