"""predict with a real finetuned run (finetune objective + segmentation head, from-run encoder) on the datacube."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import zarr

from registry_gfm.cube.reader import open_cube
from registry_gfm.predict import load_run_model, open_scene, predict_to_file


def test_a_finetuned_run_maps_the_scene_bit_identically_for_any_batch_and_block(seg_run: Path, lsat7_store: Path,
                                                                                tmp_path: Path) -> None:
    model = load_run_model(seg_run, device="cpu")
    scene = open_scene(lsat7_store, model.bands, physical=model.physical)
    outputs = []
    for batch, block in ((1, 512), (7, 160), (16, 96)):
        out = tmp_path / f"b{batch}-{block}.zarr"
        predict_to_file(scene, model, out, tile=32, overlap=8, batch_size=batch, block_size=block, probabilities=True)
        outputs.append(np.asarray(zarr.open_group(out, mode="r")["image"][...]))
    assert outputs[0].shape == (1, 7, 443, 489)
    assert all(np.array_equal(outputs[0], o, equal_nan=True) for o in outputs[1:])
    probs = outputs[0][0]
    valid = ~np.isnan(probs[0])
    assert np.allclose(probs[:, valid].sum(axis=0), 1.0, atol=1e-5)  # blended softmaxes stay distributions


def test_the_class_map_has_the_scenes_georeference_and_follows_the_model(seg_run: Path, lsat7_store: Path,
                                                                         tmp_path: Path) -> None:
    model = load_run_model(seg_run, device="cpu")
    scene = open_scene(lsat7_store, model.bands, physical=model.physical)
    out = predict_to_file(scene, model, tmp_path / "map.tif", tile=32, overlap=0, blend="none").output
    info = open_cube(lsat7_store)
    with rasterio.open(out) as ds:
        classes = ds.read(1)
        assert ds.crs.to_epsg() == info.epsg and tuple(ds.transform)[:6] == tuple(info.transform)
        assert ds.nodata == 255 and ds.dtypes[0] == "uint8"
    # without overlap each 32 x 32 tile is one forward pass: the first tile is the model's own argmax
    pipeline = model.objective, model.parts
    group = zarr.open_group(lsat7_store, mode="r")
    scale = np.asarray(info.scale[0], np.float32)[:, None, None]  # stored numbers -> reflectance
    norm = model.chips((np.asarray(group["image"][0, :, :32, :32], np.float32) * scale)[None],
                       np.asarray(group["valid"][0, :32, :32]).astype(bool)[None])
    with torch.inference_mode():
        expected = pipeline[0].logits(pipeline[1], norm).argmax(dim=1)[0].numpy()
    valid = np.asarray(group["valid"][0, :32, :32]).astype(bool)
    assert np.array_equal(classes[:32, :32][valid], expected[valid])
    assert (classes[:32, :32][~valid] == 255).all()


def test_non_finite_invalid_pixels_change_no_other_pixel(seg_run: Path) -> None:
    """An invalid pixel holding NaN or inf is an invalid pixel: the tile around it comes out as with a zero there."""
    model = load_run_model(seg_run, device="cpu")
    rng = np.random.default_rng(0)
    tiles = rng.uniform(0.0, 0.3, size=(2, len(model.bands), 32, 32)).astype(np.float32)
    valid = np.ones((2, 32, 32), bool)
    valid[:, 3:5, 7:9] = False
    clean = tiles.copy()
    clean[:, :, 3:5, 7:9] = 0.0
    poisoned = tiles.copy()
    poisoned[0, :, 3:5, 7:9] = np.nan
    poisoned[1, :, 3:5, 7:9] = np.inf
    expected, got = model(clean, valid), model(poisoned, valid)
    assert np.isfinite(got).all() and np.array_equal(expected, got)


def test_the_device_is_checked_by_us(seg_run: Path) -> None:
    from registry_gfm.errors import PredictError

    with pytest.raises(PredictError, match=r"--device 'nonsense' is not a device name; expected cpu, cuda, cuda:N"):
        load_run_model(seg_run, device="nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(PredictError, match=r"--device 'cuda': this machine has no cuda device; use --device cpu"):
            load_run_model(seg_run, device="cuda")
