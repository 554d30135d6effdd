"""``predict`` with a run trained on several time steps per chip: a datacube's consecutive steps, or one GeoTIFF per
date, on the three-date Landsat 7 crop ingested by the real stac-zarr ingest (QA cloud mask: each date has clouds
elsewhere, so every frame has its own invalid pixels)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
import xarray as xr

from registry_core import Pipeline, compose, get_registry
from registry_gfm.predict import PredictError, load_run_model, model_info, open_scene, predict_to_file

from ..conftest import LABELS
from .conftest import cli

pytestmark = pytest.mark.usefixtures("torch_one_thread")

BANDS = ["B1", "B2", "B3", "B4", "B5", "B7"]
CHIP = 32


@pytest.fixture(scope="module")
def cube(ingest_catalog: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three dates of the Landsat 7 crop in one datacube (time, band, y, x)."""
    store = tmp_path_factory.mktemp("frames") / "lsat7.zarr"
    get_registry().build("data_source", "stac-zarr", catalog=str(ingest_catalog.catalog_json), collections=["lsat7"],
                         assets=BANDS, cloud_mask="qa_pixel", chunk_size=64, store=str(store),
                         scheduler="synchronous").prepare()
    return store


@pytest.fixture(scope="module")
def frames_run(cube: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A segmentation run trained (2 steps) on chips of 2 consecutive dates: 3D positions, FPN-free head."""
    config = {
        "name": "frames",
        "data": {"use": "zarr-chips", "store": str(cube), "chip_size": CHIP, "frames": 2, "sampling": "random",
                 "samples_per_epoch": 8, "val_fraction": 0.2, "bands": BANDS, **LABELS},
        "tokenizer": {"use": "patch", "patch_size": 8},
        "positional": {"use": "sincos-3d"},
        "backbone": {"use": "vit", "embed_dim": 16, "depth": 1, "heads": 2},
        "head": {"use": "segmentation", "channels": 8},
        "objective": {"use": "finetune"},
        "train": {"steps": 2, "batch_size": 4, "seed": 0},
    }
    out = tmp_path_factory.mktemp("frames-run") / "run"
    pipeline = compose(config)
    pipeline.fit(out)
    pipeline.save(out)
    return out


def probabilities(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_datacube_frames_match_the_training_chips(frames_run: Path, cube: Path, tmp_path: Path) -> None:
    """Each tile's probabilities equal the head's answer on the very chip training would cut there (the data source's
    own reading, normalising and per-frame masking of the two dates)."""
    model = load_run_model(frames_run, device="cpu")
    info = model_info(model)
    assert info.frames == 2 and len(info.bands) == 6
    scene = open_scene(cube, info.bands, frames=2)
    assert scene.frames == 2 and scene.image.shape[0] == 12 and len(scene.times) == 2
    out = predict_to_file(scene, model, tmp_path / "p.tif", tile=CHIP, overlap=0, probabilities=True)
    probs = probabilities(out.output)

    pipeline = Pipeline.load(frames_run)
    parts, objective = pipeline.parts, pipeline.objective
    pipeline.model.eval()
    options = {k: v for k, v in tomllib.loads((frames_run / "pipeline.toml").read_text())["data"].items() if k != "use"}
    grid = get_registry().build("data_source", "zarr-chips", **{**options, "sampling": "grid"})  # aligned windows
    grid.prepare()
    assert grid.normalization() == pipeline.data.normalization()
    checked = 0
    for split in ("train", "val"):
        dataset = grid.dataset(split)
        for i in range(len(dataset)):
            sample = dataset[i]
            t0, y0, x0 = (int(v) for v in sample["window"])
            if t0 != 0 or y0 % CHIP or x0 % CHIP:
                continue
            chips = torch.as_tensor(sample["pixels"]).permute(1, 0, 2, 3)[None]  # (1, C, T, H, W)
            with torch.inference_mode():
                want = torch.softmax(objective.logits(parts, chips).float(), dim=1)[0].numpy()
            got = probs[:, y0 : y0 + CHIP, x0 : x0 + CHIP]
            usable = np.asarray(sample["valid"]).any(axis=0)
            np.testing.assert_allclose(got[:, usable], want[:, usable], atol=2e-5)
            checked += 1
    assert checked >= 3


def test_embeddings_of_frames_average_the_frames_tokens(frames_run: Path, cube: Path, tmp_path: Path) -> None:
    """--embeddings of a run of frames: at patch resolution, each patch the mean of its two frames' tokens."""
    from registry_gfm.encoder import ImageEncoder

    model = load_run_model(frames_run, embeddings=True, device="cpu")
    out = predict_to_file(open_scene(cube, model.bands, frames=2), model, tmp_path / "e.tif", tile=CHIP, overlap=0)
    features = probabilities(out.output)
    assert features.shape == (16, 24, 24)
    pipeline = Pipeline.load(frames_run)
    encoder = ImageEncoder(pipeline.parts.embed, pipeline.parts.positional, pipeline.parts.backbone).eval()
    grid = get_registry().build("data_source", "zarr-chips", store=str(cube), chip_size=CHIP, frames=2,
                                sampling="grid", bands=BANDS, val_fraction=0.0, min_valid=0.9)
    grid.prepare()
    assert grid.normalization() == pipeline.data.normalization()
    sample = grid.dataset("train")[0]
    t0, y0, x0 = (int(v) for v in sample["window"])
    assert (t0, y0 % CHIP, x0 % CHIP) == (0, 0, 0)
    with torch.inference_mode():
        tokens = encoder(torch.as_tensor(sample["pixels"]).permute(1, 0, 2, 3)[None])[0, encoder.num_prefix_tokens :]
    want = tokens.reshape(2, 4, 4, 16).mean(dim=0).permute(2, 0, 1).numpy()  # (frames, rows, cols, D) -> (D, 4, 4)
    np.testing.assert_allclose(features[:, y0 // 8 : y0 // 8 + 4, x0 // 8 : x0 // 8 + 4], want, atol=2e-5)


def _write_date(path: Path, cube: Path, t: int, tag: str | None) -> Path:
    """Time step ``t`` of the cube as a 6-band float32 GeoTIFF in physical units (NaN where not valid), dated by
    ``tag``."""
    from rasterio.transform import Affine

    from registry_gfm.cube.reader import open_cube

    info = open_cube(str(cube))
    ds = xr.open_zarr(str(cube))
    scale = np.asarray(info.scale[t], np.float32)[:, None, None]
    offset = np.asarray(info.offset[t], np.float32)[:, None, None]
    image = ds["image"].values[t].astype(np.float32) * scale + offset
    data = np.where(ds["valid"].values[t].astype(bool), image, np.float32(np.nan))
    with rasterio.open(path, "w", driver="GTiff", dtype="float32", count=data.shape[0], height=data.shape[1],
                       width=data.shape[2], crs=info.crs_wkt or f"EPSG:{info.epsg}",
                       transform=Affine(*info.transform[:6])) as dst:
        dst.write(data)
        for i, name in enumerate(BANDS, start=1):
            dst.set_band_description(i, name)
        if tag:
            dst.update_tags(TIFFTAG_DATETIME=tag)
    return path


def test_one_geotiff_per_date_in_date_order_equals_the_datacube(frames_run: Path, cube: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Dates 2 and 3 as GeoTIFFs given latest first: put in date order, the same probabilities as the datacube's steps
    1 and 2 bit for bit, and the output dated by the last frame."""
    march = _write_date(tmp_path / "a.tif", cube, 1, "2000:04:01 00:00:00")
    april = _write_date(tmp_path / "b.tif", cube, 2, "2000:05:01 00:00:00")
    code, _, err = cli(capsys, frames_run, "--input", april, "--input", march, "--output", tmp_path / "files.tif",
                       "--probabilities", "--tile", CHIP, "--overlap", 8, "--block-size", 128)
    assert (code, err) == (0, "")
    code, _, err = cli(capsys, frames_run, "--input", cube, "--time", 1, "--output", tmp_path / "cube.tif",
                       "--probabilities", "--tile", CHIP, "--overlap", 8, "--block-size", 64)
    assert (code, err) == (0, "")
    files, cube_probs = probabilities(tmp_path / "files.tif"), probabilities(tmp_path / "cube.tif")
    assert np.isfinite(files).any()
    np.testing.assert_array_equal(files, cube_probs)
    with rasterio.open(tmp_path / "cube.tif") as src:
        assert src.tags()["TIFFTAG_DATETIME"] == "2000:05:01 00:00:00"

    code, _, err = cli(capsys, frames_run, "--input", cube, "--time", 1, "--output", tmp_path / "cube.zarr",
                       "--block-size", 64)
    assert (code, err) == (0, "")
    attrs = json.loads((tmp_path / "cube.zarr" / "zarr.json").read_text())["attributes"]
    assert attrs["provenance"]["frames"] == 2
    assert [t[:10] for t in attrs["provenance"]["times"]] == ["2000-04-01", "2000-05-01"]


def test_refusals_of_frames(frames_run: Path, cube: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dated = _write_date(tmp_path / "a.tif", cube, 0, "2000:03:01 00:00:00")
    again = _write_date(tmp_path / "b.tif", cube, 1, "2000:03:01 00:00:00")
    undated = _write_date(tmp_path / "c.tif", cube, 2, None)
    with rasterio.open(dated) as src:  # one row fewer: another grid
        profile, data = src.profile, src.read()[:, 1:]
    profile.update(height=data.shape[1])
    with rasterio.open(tmp_path / "short.tif", "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(BANDS, start=1):
            dst.set_band_description(i, name)
    cases = [
        ([dated], "the model reads 2 time step(s) per tile and 1 input(s) were given"),
        ([dated, again, undated], "and 3 input(s) were given"),
        ([dated, undated], "says no acquisition time and other inputs do"),
        ([dated, again], "have the same acquisition time (2000-03-01T00:00:00)"),
        ([undated, tmp_path / "short.tif"], "does not lie on the grid of"),
        ([cube, dated], "is a datacube: give it alone"),
    ]
    for inputs, message in cases:
        args = [a for p in inputs for a in ("--input", p)]
        code, out, err = cli(capsys, frames_run, *args, "--output", tmp_path / "out.tif")
        assert code == 1 and out == "", inputs
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    code, _, err = cli(capsys, frames_run, "--input", cube, "--time", 2, "--output", tmp_path / "out.tif")
    assert code == 1 and "reads 2 consecutive time steps and datacube" in err and "--time may be 0 .. 1" in err
    assert not (tmp_path / "out.tif").exists()


def test_a_date_tag_that_is_no_date_is_passed_over(frames_run: Path, cube: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A file predicted alone needs no date, so an unreadable one does not stop it; among frames it counts as none."""
    odd = _write_date(tmp_path / "odd.tif", cube, 0, None)
    with rasterio.open(odd, "r+") as dst:
        dst.update_tags(TIFFTAG_DATETIME="June 2000", datetime="2000-03-01T00:00:00")
    assert open_scene(odd, BANDS).time == np.datetime64("2000-03-01T00:00:00")  # the next tag that is a date
    with rasterio.open(odd, "r+") as dst:
        dst.update_tags(datetime="sometime")
    assert open_scene(odd, BANDS).time is None
    dated = _write_date(tmp_path / "b.tif", cube, 1, "2000:04:01 00:00:00")
    code, _, err = cli(capsys, frames_run, "--input", odd, "--input", dated, "--output", tmp_path / "out.tif")
    assert code == 1 and f"input {odd} says no acquisition time and other inputs do (a tag that reads as no date" in err


def test_a_one_frame_run_refuses_several_inputs(seg_run: Path, cube: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    a = _write_date(tmp_path / "a.tif", cube, 0, None)
    b = _write_date(tmp_path / "b.tif", cube, 1, None)
    code, _, err = cli(capsys, seg_run, "--input", a, "--input", b, "--output", tmp_path / "out.tif")
    assert code == 1 and "the model reads one time step and 2 inputs were given" in err


def test_serve_refuses_a_run_of_frames(frames_run: Path) -> None:
    from registry_gfm.serve._predict_app import WindowPredictor

    with pytest.raises(PredictError, match="reads 2 time steps per tile, and serve predicts one GeoTIFF window"):
        WindowPredictor(frames_run, max_pixels=1024 * 1024, device="cpu")
