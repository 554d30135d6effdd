"""``predict`` with a classification run: one class per chip of the size it was trained on, as a raster at chip
resolution (the scene's CRS, the transform scaled by the chip) or as polygons of neighbouring chips of one class."""

from __future__ import annotations

from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio

from registry_core import compose
from registry_core.cli import main
from registry_gfm.predict import TileClasses, load_run_model, open_scene, predict_to_file

from ..conftest import finetune_config


@pytest.fixture(scope="module")
def cls_run(lsat7_store: Path, tiny_mae_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = finetune_config(lsat7_store, tiny_mae_run, head={"use": "classification"}, task="classification")
    config["train"].update(steps=3)
    out = tmp_path_factory.mktemp("cls-run") / "run"
    pipeline = compose(config)
    pipeline.fit(out)
    pipeline.save(out)
    return out


def test_each_chip_of_the_scene_gets_the_class_the_classifier_gives_it_alone(cls_run: Path, lsat7_store: Path,
                                                                             tmp_path: Path) -> None:
    model = load_run_model(cls_run, device="cpu")
    assert isinstance(model, TileClasses) and model.factor == 16  # the tiny pipeline's chips
    scene = open_scene(lsat7_store, model.bands, physical=model.physical)
    out = predict_to_file(scene, model, tmp_path / "classes.tif", tile=64, overlap=0, blend="none").output
    with rasterio.open(out) as ds:
        classes, transform = ds.read(1), ds.transform
        assert classes.shape == (-(-443 // 16), -(-489 // 16)) and transform.a == 16 * 28.5
    image = np.asarray(scene.image[:, 160:176, 224:240], np.float32)[None]
    valid = np.asarray(scene.valid[160:176, 224:240], bool)[None]
    alone = model(image, valid)  # the chip as a tile of its own
    assert alone.shape == (1, 7, 1, 1) and classes[10, 14] == int(np.argmax(alone[0, :, 0, 0]))
    assert len(np.unique(classes[classes != 255])) >= 1


def test_classification_runs_take_whole_chips_by_default_and_write_polygons(
        cls_run: Path, lsat7_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(cls_run), "--input", str(lsat7_store), "--output", str(tmp_path / "c.tif"),
                 "--quiet"]) == 0
    assert main(["predict", str(cls_run), "--input", str(lsat7_store), "--output", str(tmp_path / "c.gpkg"),
                 "--quiet"]) == 0
    capsys.readouterr()
    with rasterio.open(tmp_path / "c.tif") as ds:
        classes = ds.read(1)
    with fiona.open(tmp_path / "c.gpkg") as src:
        pixels = sum(f["properties"]["pixels"] for f in src)
        assert src.crs.to_epsg() == 32119
    assert pixels == int((classes != 255).sum())  # every classified chip is in one polygon
    assert main(["predict", str(cls_run), "--input", str(lsat7_store), "--output", str(tmp_path / "bad.tif"),
                 "--overlap", "8", "--quiet"]) == 1
    assert "--overlap 8 must be a multiple of 16" in capsys.readouterr().err
