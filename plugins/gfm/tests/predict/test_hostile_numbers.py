"""Numbers that would exhaust the machine or hang ``predict``, through the real CLI in a subprocess: an oversized
scene, tiles and batches too large, blocks smaller than a tile, and scheduler addresses that are malformed or
answer as something else. Each is refused with one ``error:`` line before work starts, and nothing is written."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from registry_core.testing import one_error_line, run_cli
from registry_gfm.dask_runtime import probe_scheduler
from registry_gfm.errors import SchedulerError

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]
TRANSFORM = Affine(30.0, 0.0, 630000.0, 0.0, -30.0, 228000.0)


def write_scene(path: Path, side: int, *, sparse: bool = False) -> Path:
    """A georeferenced 6-band GeoTIFF; ``sparse``: tiled with no block written (a huge file of a few MB)."""
    profile = {"driver": "GTiff", "dtype": "uint8", "count": len(BANDS), "height": side, "width": side,
               "crs": "EPSG:32119", "transform": TRANSFORM, "nodata": 0, "tiled": True, "blockxsize": 512,
               "blockysize": 512, "SPARSE_OK": "TRUE", "BIGTIFF": "YES"}
    with rasterio.open(path, "w", **profile) as dst:
        if not sparse:
            dst.write(np.random.default_rng(0).integers(1, 255, size=(len(BANDS), side, side), dtype=np.uint8))
        for i, name in enumerate(BANDS, start=1):
            dst.set_band_description(i, name)
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scene(tmp_path_factory.mktemp("scene") / "scene.tif", 64)


def predict(run: Path, scene: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("predict", str(run), "--input", str(scene), "--output", str(out), "--embeddings", "--quiet",
                   *extra, cwd=out.parent)


SIZES = [
    # The tiny MAE has patch size 4: 16384 patches per tile allow at most 512 pixels.
    (["--tile", "65536"], "error: --tile 65536 is too large: at most 512 pixels for this model (patch size 4, at "
                          "most 16384 patches per tile)"),
    (["--compute-batch", "10000000"], "error: --compute-batch 10000000 must be between 1 and 4096 tiles"),
    (["--compute-batch", "0"], "error: --compute-batch 0 must be between 1 and 4096 tiles"),
    (["--batch-size", "100000"], "error: --batch-size 100000 must be between 1 and 4096 tiles"),
    (["--block-size", "1"], "error: --block-size 1 must be a positive multiple of 4 (input pixels per output pixel)"),
    (["--block-size", "32"], "error: --block-size 32 must hold at least one tile (--tile 64)"),
    (["--tile", "512", "--compute-batch", "4096", "--batch-size", "4096", "--block-size", "1048576"],
     "error: one block task would hold at least "),
    (["--scheduler", "://"], "error: --scheduler '://' is not a scheduler address; expected SCHEME://HOST:PORT"),
    (["--scheduler", "file:///"], "error: --scheduler 'file:///' is not a scheduler address; expected "
                                  "SCHEME://HOST:PORT with SCHEME one of tcp, tls, ucx, ws, wss"),
    (["--scheduler", "tcp://127.0.0.1"], "error: --scheduler 'tcp://127.0.0.1' is not a scheduler address"),
]


@pytest.mark.parametrize(("extra", "message"), SIZES, ids=[" ".join(e)[:40] for e, _ in SIZES])
def test_sizes_and_schedulers_are_refused_before_work(extra: list[str], message: str, tiny_mae_run: Path,
                                                      scene: Path, tmp_path: Path) -> None:
    line = one_error_line(predict(tiny_mae_run, scene, tmp_path / "out.tif", *extra))
    assert line.startswith(message), line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_scene_too_large_for_one_prediction_is_refused_before_work(tiny_mae_run: Path, tmp_path: Path) -> None:
    huge = write_scene(tmp_path / "huge.tif", 300_000, sparse=True)
    assert huge.stat().st_size < 64 << 20
    started = time.perf_counter()
    line = one_error_line(predict(tiny_mae_run, huge, tmp_path / "out.tif"))
    assert line == (f"error: input {huge} is 300000 x 300000 pixels (9e+10), more than the 4.29e+09 one prediction "
                    "may cover; cut it into smaller scenes (e.g. with gdal_translate -srcwin) and predict each")
    assert time.perf_counter() - started < 60  # refused at open, not after reading 9e10 pixels
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.tif"]


@pytest.mark.slow
def test_a_scheduler_address_that_is_not_dask_is_named_within_the_timeout(tiny_mae_run: Path, scene: Path,
                                                                           tmp_path: Path) -> None:
    """An HTTP server accepts the connection and never speaks dask's protocol: dask's Client waits forever."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        line = one_error_line(predict(tiny_mae_run, scene, tmp_path / "out.tif", "--scheduler",
                                      f"tcp://127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.wait()
    assert line == (f"error: scheduler tcp://127.0.0.1:{port}: no dask scheduler answered (no answer within 10 s); "
                    "start one with `dask scheduler` or check the address and port")
    assert not (tmp_path / "out.tif").exists()


def test_a_worker_address_is_not_a_scheduler() -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        probe_scheduler(cluster.scheduler_address)  # the scheduler answers
        worker = next(iter(cluster.workers.values())).address
        with pytest.raises(SchedulerError, match=f"scheduler {worker} answered as Worker, not a dask scheduler"):
            probe_scheduler(worker)


def test_the_device_is_checked_by_us(tiny_mae_run: Path, scene: Path, tmp_path: Path) -> None:
    line = one_error_line(predict(tiny_mae_run, scene, tmp_path / "out.tif", "--device", "nonsense"))
    assert line.startswith("error: --device 'nonsense' is not a device name; expected cpu, cuda, cuda:N"), line
    import torch

    if not torch.cuda.is_available():
        line = one_error_line(predict(tiny_mae_run, scene, tmp_path / "out.tif", "--device", "cuda"))
        assert line == "error: --device 'cuda': this machine has no cuda device; use --device cpu", line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_complex_pixels_are_refused(tiny_mae_run: Path, tmp_path: Path) -> None:
    path = tmp_path / "slc.tif"
    with rasterio.open(path, "w", driver="GTiff", dtype="complex64", count=len(BANDS), height=16, width=16,
                       crs="EPSG:32119", transform=TRANSFORM) as dst:
        dst.write(np.ones((len(BANDS), 16, 16), np.complex64) * (1 + 1j))
        for i, name in enumerate(BANDS, start=1):
            dst.set_band_description(i, name)
    line = one_error_line(predict(tiny_mae_run, path, tmp_path / "out.tif"))
    assert line.startswith(f"error: input {path}: bands [1, 2, 3, 4, 5, 6] hold complex numbers; expected real"), line
    assert not (tmp_path / "out.tif").exists()


def test_non_finite_pixels_are_invalid_pixels_not_poison(tiny_mae_run: Path, tmp_path: Path) -> None:
    """16 NaN / inf pixels take out the patches they lie in, not the tiles around them; a scene whose pixels are
    mostly non-finite still has valid pixels to predict."""
    rng = np.random.default_rng(3)
    data = rng.uniform(0.01, 0.3, size=(len(BANDS), 64, 64)).astype(np.float32)
    data[:, 10:14, 20:22] = np.nan
    data[:, 40:42, 50:54] = np.inf
    sparse = data.copy()
    sparse[:, rng.random((64, 64)) < 4 / 9] = np.nan  # 5/9 of the pixels finite
    outputs = {}
    for name, pixels in (("bad", data), ("sparse", sparse)):
        path = tmp_path / f"{name}.tif"
        with rasterio.open(path, "w", driver="GTiff", dtype="float32", count=len(BANDS), height=64, width=64,
                           crs="EPSG:32119", transform=TRANSFORM) as dst:
            dst.write(pixels)
            for i, band in enumerate(BANDS, start=1):
                dst.set_band_description(i, band)
        out = tmp_path / f"{name}-emb.tif"
        done = predict(tiny_mae_run, path, out)
        assert done.returncode == 0, done.stderr
        with rasterio.open(out) as src:
            outputs[name] = src.read(1)
    # patch size 4: the NaN block (rows 10-13, cols 20-21) lies in patch (2-3, 5); the inf one in (10, 12-13)
    assert np.isnan(outputs["bad"]).sum() <= 4, np.argwhere(np.isnan(outputs["bad"]))
    assert np.isfinite(outputs["sparse"]).any()
