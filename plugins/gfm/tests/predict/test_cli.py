"""``python -m registry_core predict`` on a real run folder (a tiny MAE saved by Pipeline.save over the Landsat 7
datacube), the segmentation adapter on a stand-in head, and the one-line errors of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine
from torch import nn

from registry_gfm.cube.reader import open_cube
from registry_gfm.predict import (
    PatchEmbeddings,
    PredictError,
    SegmentationProbabilities,
    load_run_model,
    model_info,
    open_scene,
    pipeline_model,
    predict_to_file,
)

from .conftest import cli

pytestmark = pytest.mark.usefixtures("torch_one_thread")

LSAT7_BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]
TRANSFORM = Affine(30.0, 0.0, 630000.0, 0.0, -30.0, 228000.0)


def write_tif(path: Path, data: np.ndarray, names: list[str], crs: str | None = "EPSG:32119") -> Path:
    profile = {"driver": "GTiff", "dtype": str(data.dtype), "count": data.shape[0], "height": data.shape[1],
               "width": data.shape[2], "crs": crs, "transform": TRANSFORM, "nodata": 0}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(names, start=1):
            dst.set_band_description(i, name)
    return path


def test_embeddings_of_a_run_without_head_at_patch_resolution(mae_run: Path, lsat7_store: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, mae_run, "--input", lsat7_store, "--output", tmp_path / "emb.tif", "--embeddings",
                         "--tile", 32, "--overlap", 8, "--block-size", 128)
    assert (code, err) == (0, "")
    assert out.startswith(f"wrote {tmp_path / 'emb.tif'} (") and "16 bands of 56 x 62 px" in out
    assert out.endswith("input px/s\n") and out.count("\n") == 1
    info = open_cube(lsat7_store)
    a, b, c, d, e, f = info.transform
    with rasterio.open(tmp_path / "emb.tif") as src:
        assert src.count == 16 and src.shape == (56, 62)  # ceil(443 / 8), ceil(489 / 8)
        assert tuple(src.transform)[:6] == (a * 8, b * 8, c, d * 8, e * 8, f)
        emb = src.read()
    assert np.isfinite(emb).mean() > 0.5 and emb[np.isfinite(emb)].std() > 0


def test_the_encoder_adapter_drops_the_cls_token_and_keeps_the_patch_grid(mae_run: Path) -> None:
    model = load_run_model(mae_run, embeddings=True)
    assert isinstance(model, PatchEmbeddings)
    info = model_info(model)
    assert (info.bands, info.factor, info.multiple, info.channels) == (tuple(LSAT7_BANDS), 8, 8, 16)
    assert model.encoder.num_prefix_tokens == 1 and info.physical
    tiles = np.random.default_rng(0).random((3, 6, 32, 40), dtype=np.float32)
    out = model(tiles, np.ones((3, 32, 40), bool))
    assert out.shape == (3, 16, 4, 5) and out.dtype == np.float32
    one = model(tiles[1:2], np.ones((1, 32, 40), bool))  # a tile's embedding does not depend on its batch
    np.testing.assert_allclose(out[1:2], one, rtol=1e-5, atol=1e-6)


def test_a_run_without_head_needs_embeddings(mae_run: Path, lsat7_store: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PredictError, match=r"has no head: its objective .* gives no class logits; pass --embeddings"):
        load_run_model(mae_run)
    code, out, err = cli(capsys, mae_run, "--input", lsat7_store, "--output", tmp_path / "x.tif")
    assert code == 1 and out == "" and err.startswith("error: run ") and "pass --embeddings" in err
    assert err.count("\n") == 1 and not (tmp_path / "x.tif").exists()


class StandInHead(nn.Module):
    """A segmentation objective as the fine-tuning one will be: ``logits(parts, chips)`` and ``num_classes``."""

    num_classes = 3
    class_names = ("water", "forest", "urban")

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, kernel_size=1)
        self.seen: list[torch.Tensor] = []

    def logits(self, parts: Any, chips: torch.Tensor) -> torch.Tensor:
        self.seen.append(chips.clone())
        return self.conv(chips)


def _stand_in_pipeline(head: StandInHead) -> Any:
    norm = {"bands": ["red", "nir08"], "mean": [0.1, 0.3], "std": [0.05, 0.1], "apply_scale": True}
    data = SimpleNamespace(normalization=lambda: norm, config=SimpleNamespace(frames=1))
    return SimpleNamespace(data=data, objective=head, parts=SimpleNamespace(embed=SimpleNamespace(patch=4)),
                           model=head)


def test_the_segmentation_adapter_normalises_and_returns_probabilities(tmp_path: Path) -> None:
    head = StandInHead()
    model = pipeline_model(_stand_in_pipeline(head), device="cpu")
    assert isinstance(model, SegmentationProbabilities)
    info = model_info(model)
    assert (info.channels, info.factor, info.multiple, info.classes) == (3, 1, 4, ("water", "forest", "urban"))
    tiles = np.random.default_rng(1).random((2, 2, 8, 8), dtype=np.float32)
    valid = np.ones((2, 8, 8), bool)
    valid[0, :2] = False
    probs = model(tiles, valid)
    assert probs.shape == (2, 3, 8, 8) and np.allclose(probs.sum(axis=1), 1, atol=1e-6)
    expected = (tiles - np.array([0.1, 0.3], np.float32)[:, None, None]) / np.array([0.05, 0.1], np.float32)[:, None, None]
    expected[0, :, :2] = 0  # invalid pixels read 0, as in training
    seen = head.seen[-1].numpy()
    assert seen.shape[0] == model.compute_batch  # the network always sees one fixed batch size
    np.testing.assert_allclose(seen[:2], expected, rtol=1e-6)
    assert not seen[2:].any()  # padded with empty tiles
    rng = np.random.default_rng(2)
    data = rng.integers(1, 10000, size=(2, 60, 70)).astype(np.uint16)
    tif = write_tif(tmp_path / "scene.tif", data, ["B8A", "red"])  # B8A is nir08: matched by identity
    scene = open_scene(tif, model.bands)
    assert scene.bands == ("red", "B8A")
    result = predict_to_file(scene, model, tmp_path / "classes.tif", tile=32, overlap=8)
    with rasterio.open(result.output) as src:
        classes = src.read(1)
    assert classes.dtype == np.uint8 and set(np.unique(classes)) <= {0, 1, 2}


def test_a_run_of_frames_reads_frames_and_one_lacking_normalisation_is_refused() -> None:
    pipeline = _stand_in_pipeline(StandInHead())
    pipeline.data.config.frames = 3
    assert model_info(pipeline_model(pipeline, device="cpu")).frames == 3  # predicted in test_frames.py
    pipeline.data = SimpleNamespace()
    with pytest.raises(PredictError, match=r"its data source SimpleNamespace has no normalization\(\)"):
        pipeline_model(pipeline, device="cpu")


@pytest.fixture
def rgb_tif(tmp_path: Path) -> Path:
    data = np.random.default_rng(5).integers(1, 255, size=(3, 40, 40)).astype(np.uint8)
    return write_tif(tmp_path / "rgb.tif", data, ["blue", "green", "red"])


@pytest.mark.parametrize(("args", "message"), [
    (["--tile", "30"], "error: --tile 30 must be a multiple of 8 (the model's patch size); try 24"),
    (["--tile", "32", "--overlap", "32"], "error: --overlap 32 must be at least 0 and smaller than --tile 32"),
    (["--scheduler", "thread"], "error: --scheduler 'thread' is unknown; expected threads, synchronous, local:N"),
    (["--band-map", "b1"], "error: --band-map: 'b1' is not INPUT=MODEL"),
    (["--band-map", "b1=cyan"], "error: --band-map b1=cyan: 'cyan' is not a band of the model"),
    (["--bands", "a,b"], "error: --bands names 2 bands (a, b) but input"),
    (["--probabilities"], "error: --probabilities and --embeddings exclude each other"),
    ([], "error: input {rgb}: band 'nir08' is missing; band 'swir16' is missing; band 'swir22' is missing; the "
         "input has bands blue, green, red"),
])
def test_bad_input_ends_with_one_error_line(args: list[str], message: str, mae_run: Path, rgb_tif: Path,
                                            tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, mae_run, "--input", rgb_tif, "--output", tmp_path / "o.tif", "--embeddings", *args)
    assert code == 1 and out == ""
    assert err.startswith(message.format(rgb=rgb_tif)) and err.count("\n") == 1, err
    assert not (tmp_path / "o.tif").exists()


def test_an_existing_output_is_refused_and_left_untouched(mae_run: Path, rgb_tif: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "o.tif"
    old.write_bytes(b"an earlier prediction")
    code, _, err = cli(capsys, mae_run, "--input", rgb_tif, "--output", old, "--embeddings")
    assert code == 1 and err == f"error: --output {old} exists; pass --overwrite to replace it (it is left untouched)\n"
    assert old.read_bytes() == b"an earlier prediction"


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_missing_run_input_and_ungeoreferenced_input_are_one_line_errors(mae_run: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, tmp_path / "no-run", "--input", tmp_path, "--output", tmp_path / "o.tif")
    assert code == 1 and err.startswith(f"error: run folder {tmp_path / 'no-run'} has no pipeline.toml")
    code, _, err = cli(capsys, mae_run, "--input", tmp_path / "none.tif", "--output", tmp_path / "o.tif")
    assert code == 1 and err == f"error: --input {tmp_path / 'none.tif'} does not exist\n"
    plain = write_tif(tmp_path / "plain.tif", np.ones((6, 8, 8), np.uint8), LSAT7_BANDS, crs=None)
    code, _, err = cli(capsys, mae_run, "--input", plain, "--output", tmp_path / "o.tif", "--embeddings")
    assert code == 1 and err == f"error: input {plain} is not georeferenced: it has no CRS (the output must carry one)\n"
    code, _, err = cli(capsys, mae_run, "--input", plain, "--output", tmp_path / "o.png")
    assert code == 1 and err.startswith(f"error: --output {tmp_path / 'o.png'}: unknown format '.png'")


def test_the_command_is_listed_and_documented() -> None:
    run = subprocess.run([sys.executable, "-m", "registry_core", "predict", "--help"], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0
    for option in ("--input", "--output", "--tile", "--overlap", "--batch-size", "--block-size", "--blend", "--bands",
                   "--band-map", "--time", "--probabilities", "--embeddings", "--scheduler", "--overwrite", "--quiet"):
        assert option in run.stdout
    assert "bit-identical" in run.stdout
