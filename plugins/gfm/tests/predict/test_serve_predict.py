"""``serve`` of an imagery run: ``POST /v1/predict`` answers a GeoTIFF window with ``predict``'s own output (same
class map, the window's CRS and transform), through the real CLI on a loopback port; bad windows get OpenAI's error
JSON with the right status, and SIGTERM ends the server with exit 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile
from rasterio.windows import Window

pytest.importorskip("fastapi")

from registry_gfm.predict import load_run_model, open_scene, predict_to_file

from ..conftest import DATA

#: The shipped Landsat 7 bands, as the model names them.
LSAT7 = {"B1": "blue", "B2": "green", "B3": "red", "B4": "nir08", "B5": "swir16", "B7": "swir22"}


@pytest.fixture(scope="module")
def window(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 150 x 200 window of the real Landsat 7 scene, its six bands in one GeoTIFF named by description."""
    arrays = []
    for band in LSAT7:
        with rasterio.open(DATA / f"lsat7_2000_{band}.tif") as src:
            cut = Window(200, 150, 200, 150)
            arrays.append(src.read(1, window=cut))
            profile = {**src.profile, "driver": "GTiff", "count": len(LSAT7), "width": 200, "height": 150,
                       "transform": src.window_transform(cut)}
    path = tmp_path_factory.mktemp("window") / "window.tif"
    with rasterio.open(path, "w", **profile) as dst:
        for i, (array, name) in enumerate(zip(arrays, LSAT7.values(), strict=True), start=1):
            dst.write(array, i)
            dst.set_band_description(i, name)
    return path


@contextmanager
def serving(run: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``python -m registry_core serve RUN --port 0 ...`` until the block ends (SIGTERM, exit 0): its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "registry_core", "serve", str(run), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving "), line + (proc.stderr.read() if proc.stderr else "")
        yield line.split()[3].removesuffix("/v1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def post(url: str, body: bytes, content_type: str = "image/tiff",
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            assert response.headers["Content-Type"] == "image/tiff"
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def raster(data: bytes) -> tuple[np.ndarray, object, tuple[float, ...], str]:
    with MemoryFile(data) as mem, mem.open() as ds:
        return ds.read(), ds.crs, tuple(ds.transform)[:6], ds.dtypes[0]


def error(status_and_body: tuple[int, bytes]) -> tuple[int, str | None, str]:
    status, body = status_and_body
    detail = json.loads(body)["error"]
    return status, detail["code"], detail["message"]


def test_predict_answers_what_the_predict_command_writes_with_the_windows_georeference(
        seg_run: Path, window: Path, tmp_path: Path) -> None:
    model = load_run_model(seg_run, device="cpu")
    scene = open_scene(window, model.bands, physical=model.physical)
    expected = predict_to_file(scene, model, tmp_path / "map.tif", tile=32, overlap=8).output
    with rasterio.open(expected) as ds:
        want, want_crs, want_transform = ds.read(), ds.crs, tuple(ds.transform)[:6]
    with rasterio.open(window) as ds:
        assert (ds.crs, tuple(ds.transform)[:6]) == (want_crs, want_transform)  # the window's own georeference
    body = window.read_bytes()
    with serving(seg_run, "--tile", "32", "--overlap", "8") as url:
        status, data = post(f"{url}/v1/predict", body)
        assert status == 200
        got, crs, transform, dtype = raster(data)
        assert (crs, transform, dtype, got.shape) == (want_crs, want_transform, "uint8", (1, 150, 200))
        assert np.array_equal(got, want)  # the same code as predict: pixel for pixel
        assert len(np.unique(got[got != 255])) >= 2
        status, data = post(f"{url}/v1/predict?output=probabilities", body)
        probs, _, transform, dtype = raster(data)
        assert (status, dtype, probs.shape[0], transform) == (200, "float32", 7, want_transform)
        valid = ~np.isnan(probs[0])
        assert np.allclose(probs[:, valid].sum(axis=0), 1.0, atol=1e-5)
        status, data = post(f"{url}/v1/predict?output=embeddings&tile=32&overlap=0&blend=none", body)
        embeddings, _, transform, _ = raster(data)
        patch = 4  # the tiny ViT's patch: the embeddings' pixels are patches
        assert status == 200 and embeddings.shape[1:] == (-(-150 // patch), 200 // patch)
        assert transform == (want_transform[0] * patch, 0.0, want_transform[2], 0.0, want_transform[4] * patch,
                             want_transform[5])
        health = json.loads(urllib.request.urlopen(f"{url}/health", timeout=10).read())
        assert health == {"status": "ok", "model": "tiny", "queue": 0, "windows": 3}
        metrics = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
        assert 'registry_core_requests_total{route="/v1/predict",status="200"} 3.0' in metrics
        assert "registry_core_predicted_pixels_total 90000.0" in metrics  # three windows of 150 x 200
        # ... and a renamed band is found through band_map, as with predict --band-map
        renamed = tmp_path / "renamed.tif"
        with rasterio.open(window) as src, rasterio.open(renamed, "w", **src.profile) as dst:
            dst.write(src.read())
            for i in range(1, src.count + 1):
                dst.set_band_description(i, f"b{i}")
        mapping = ",".join(f"b{i}={name}" for i, name in enumerate(LSAT7.values(), start=1))
        status, data = post(f"{url}/v1/predict?band_map={mapping}", renamed.read_bytes())
        assert status == 200 and np.array_equal(raster(data)[0], want)


def test_bad_windows_get_an_error_object_with_the_right_status(seg_run: Path, window: Path, tmp_path: Path) -> None:
    body = window.read_bytes()
    small, three = tmp_path / "small.tif", tmp_path / "three.tif"  # 64 x 64: six bands, and three
    cut = Window(0, 0, 64, 64)
    with rasterio.open(window) as src:
        profile = {**src.profile, "width": 64, "height": 64, "transform": src.window_transform(cut)}
        with rasterio.open(small, "w", **profile) as dst:
            dst.write(src.read(window=cut))
            dst.descriptions = src.descriptions
        with rasterio.open(three, "w", **{**profile, "count": 3}) as dst:
            dst.write(src.read([1, 2, 3], window=cut))
            dst.descriptions = src.descriptions[:3]
    with serving(seg_run, "--max-pixels", "20000", "--api-key-env", "IMAGERY_KEY",
                 env={"IMAGERY_KEY": "secret"}) as url:
        key = {"Authorization": "Bearer secret"}
        assert error(post(f"{url}/v1/predict", body))[:2] == (401, "invalid_api_key")
        status, code, message = error(post(f"{url}/v1/predict", body, headers=key))
        assert (status, code) == (413, "window_too_large") and "200 x 150 = 30000 px; at most 20000" in message
        assert post(f"{url}/v1/predict", small.read_bytes(), headers=key)[0] == 200
        status, code, message = error(post(f"{url}/v1/predict", b"not a tiff", headers=key))
        assert (status, code) == (400, "invalid_image")
        status, code, _ = error(post(f"{url}/v1/predict", body, content_type="application/json", headers=key))
        assert (status, code) == (415, "unsupported_media_type")
        status, code, message = error(post(f"{url}/v1/predict?stride=3", body, headers=key))
        assert (status, code) == (400, "invalid_value") and "unknown parameter 'stride'" in message
        status, _, message = error(post(f"{url}/v1/predict?tile=30", small.read_bytes(), headers=key))
        assert status == 400 and "multiple of" in message  # the tiling checks of predict
        status, _, message = error(post(f"{url}/v1/predict", three.read_bytes(), headers=key))
        assert status == 400 and "nir08" in message  # a band the model needs is missing: named


def test_a_run_without_head_serves_embeddings_only(tiny_mae_run: Path, window: Path) -> None:
    with serving(tiny_mae_run) as url:
        status, code, message = error(post(f"{url}/v1/predict?output=classes", window.read_bytes()))
        assert (status, code) == (400, "invalid_value") and "has no head" in message
        status, data = post(f"{url}/v1/predict", window.read_bytes())  # embeddings by default
        assert status == 200 and raster(data)[3] == "float32"


def test_serve_refuses_what_it_cannot_serve_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for target, message in ((tmp_path / "empty", "is not a run folder (no pipeline.toml)"),
                            ("prithvi-eo-1.0-100m", "serve predicts with a run folder")):
        proc = subprocess.run([sys.executable, "-m", "registry_core", "serve", str(target)], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr.startswith("error: ") and message in proc.stderr and proc.stderr.count("\n") == 1
