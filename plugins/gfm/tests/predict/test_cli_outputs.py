"""What ``predict --overwrite`` and a second writer may touch, through the real CLI in a subprocess: never an
input (the GeoTIFF or the datacube read), never a folder registry-core did not write, only an earlier prediction;
a second predict to one output, or a second ingest into one store, is refused naming the holder's pid."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from registry_core.testing import one_error_line, run_cli

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]
CATALOG = Path(__file__).resolve().parents[4] / "tests" / "data" / "gfm_lsat7" / "stac" / "catalog.json"


def snapshot(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    path = tmp_path / "scene.tif"
    data = np.random.default_rng(1).integers(1, 255, size=(len(BANDS), 48, 48), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", dtype="uint8", count=len(BANDS), height=48, width=48,
                       crs="EPSG:32119", transform=Affine(30.0, 0, 630000.0, 0, -30.0, 228000.0), nodata=0) as dst:
        dst.write(data)
        for i, name in enumerate(BANDS, start=1):
            dst.set_band_description(i, name)
    return path


def predict(run: Path, source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("predict", str(run), "--input", str(source), "--output", str(out), "--embeddings", "--quiet",
                   "--tile", "16", "--overlap", "4", "--block-size", "32", *extra, cwd=out.parent)


def test_overwrite_never_replaces_the_input_geotiff(tiny_mae_run: Path, scene: Path) -> None:
    before = snapshot(scene)
    line = one_error_line(predict(tiny_mae_run, scene, scene, "--overwrite"))
    assert "--output" in line and str(scene) in line and "input" in line, line
    assert snapshot(scene) == before


def test_overwrite_never_replaces_the_input_datacube(tiny_mae_run: Path, lsat7_store: Path, tmp_path: Path) -> None:
    cube = Path(shutil.copytree(lsat7_store, tmp_path / "cube.zarr"))
    before = snapshot(cube)
    line = one_error_line(predict(tiny_mae_run, cube, cube, "--overwrite"))
    assert "--output" in line and str(cube) in line and "input" in line, line
    assert snapshot(cube) == before


def test_overwrite_never_removes_a_zarr_folder_we_did_not_write(tiny_mae_run: Path, scene: Path,
                                                                tmp_path: Path) -> None:
    mine = tmp_path / "mine.zarr"
    (mine / "notes").mkdir(parents=True)
    (mine / "notes" / "keep.txt").write_text("a user's folder that happens to end in .zarr")
    line = one_error_line(predict(tiny_mae_run, scene, mine, "--overwrite"))
    assert line.startswith(f"error: --output --overwrite refused: {mine}") or str(mine) in line, line
    assert (mine / "notes" / "keep.txt").read_text() == "a user's folder that happens to end in .zarr"


def test_overwrite_replaces_an_earlier_prediction(tiny_mae_run: Path, scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.zarr"
    assert predict(tiny_mae_run, scene, out).returncode == 0
    (out / "extra.txt").write_text("left by the earlier prediction's reader")
    done = predict(tiny_mae_run, scene, out, "--overwrite")
    assert done.returncode == 0, done.stderr
    assert not (out / "extra.txt").exists() and (out / "zarr.json").is_file()


HOLD = """
import sys, time
from registry_core.atomic import writer_lock
with writer_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(60)
"""


@contextmanager
def held(path: Path, what: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``path``'s writer lock, as a second predict or ingest would meet it."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), what], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_a_second_predict_to_one_output_is_refused(tiny_mae_run: Path, scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.tif"
    with held(out, "--output") as holder:
        line = one_error_line(predict(tiny_mae_run, scene, out))
    assert line == (f"error: --output {out} is being written by another process (pid {holder.pid}); wait for it to "
                    "finish, or choose another path")
    assert not out.exists()


def test_a_second_ingest_into_one_store_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "ingest.toml"
    config.write_text(f'[data]\nuse = "stac-zarr"\ncatalog = "{CATALOG}"\ncollections = ["landsat7-crop"]\n'
                      'assets = ["blue", "red"]\nstore = "cube.zarr"\n')
    store = tmp_path / "cube.zarr"
    with held(store, "store") as holder:
        line = one_error_line(run_cli("ingest", str(config), cwd=tmp_path))
    assert line == (f"error: store {store} is being written by another process (pid {holder.pid}); wait for it to "
                    "finish, or choose another path")
    assert not store.exists()
