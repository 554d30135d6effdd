"""``predict --output X.gpkg|.geojson|.fgb|.parquet``: a finetuned run's class map of the real Landsat 7 scene as
polygons with their mean probability, the same for every block size, rasterizing back to predict's own class map."""

from __future__ import annotations

from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.features import rasterize
from scipy import ndimage
from shapely.geometry import shape

from registry_core.cli import main


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["predict", *map(str, args), "--quiet"])
    out = capsys.readouterr()
    return code, out.out, out.err


def polygons(path: Path) -> list[tuple[int, int, float, bytes]]:
    with fiona.open(path) as src:
        assert src.crs.to_epsg() == 32119  # the scene's CRS
        return sorted((f["properties"]["class"], f["properties"]["pixels"], f["properties"]["probability"],
                       shapely.normalize(shape(f["geometry"])).wkb) for f in src)


def test_polygons_match_the_class_map_for_every_block_size(seg_run: Path, lsat7_store: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    options = ("--tile", 32, "--overlap", 8)
    assert cli(capsys, seg_run, "--input", lsat7_store, "--output", tmp_path / "map.tif", *options)[0] == 0
    with rasterio.open(tmp_path / "map.tif") as src:
        classes, transform = src.read(1), src.transform
    found = {}
    for block in (128, 256, 512):
        code, out, err = cli(capsys, seg_run, "--input", lsat7_store, "--output", tmp_path / f"b{block}.gpkg",
                             "--block-size", block, *options)
        assert (code, err) == (0, "") and out.startswith(f"wrote {tmp_path / f'b{block}.gpkg'} (GPKG, ")
        found[block] = polygons(tmp_path / f"b{block}.gpkg")
    assert found[128] == found[256] == found[512]  # mean probabilities included: summed exactly
    regions = sum(ndimage.label(classes == v)[1] for v in np.unique(classes) if v != 255)
    assert len(found[128]) == regions
    assert all(0 < p <= 1 for _, _, p, _ in found[128])
    with fiona.open(tmp_path / "b256.gpkg") as src:
        back = rasterize(((shape(f["geometry"]), f["properties"]["class"]) for f in src), out_shape=classes.shape,
                         transform=transform, fill=255, dtype="uint8")
    assert np.array_equal(back, classes)  # pixel for pixel

    # --min-area: every pixel still agrees except those of the regions left out (smaller than it)
    pixel = abs(transform.a * transform.e)
    code, out, _ = cli(capsys, seg_run, "--input", lsat7_store, "--output", tmp_path / "big.gpkg",
                       "--min-area", 20 * pixel, *options)
    assert code == 0
    with fiona.open(tmp_path / "big.gpkg") as src:
        kept = [(shape(f["geometry"]), f["properties"]["class"]) for f in src]
        assert all(f["properties"]["pixels"] >= 20 for f in src)
    back = rasterize(kept, out_shape=classes.shape, transform=transform, fill=255, dtype="uint8")
    small = np.zeros(classes.shape, bool)
    for v in np.unique(classes):
        if v == 255:
            continue
        labelled, _ = ndimage.label(classes == v)
        sizes = np.bincount(labelled.ravel())
        small |= (labelled > 0) & (sizes[labelled] < 20)
    assert np.array_equal(back[~small], classes[~small]) and (back[small] == 255).all() and small.any()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # the staging store is gone


def test_vector_outputs_refuse_what_polygons_cannot_hold(seg_run: Path, tiny_mae_run: Path, lsat7_store: Path,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        ((seg_run, "--output", tmp_path / "p.gpkg", "--probabilities"), "polygons are drawn from the class map"),
        ((seg_run, "--output", tmp_path / "p.tif", "--min-area", 5), "give a vector --output"),
        ((seg_run, "--output", tmp_path / "p.gpkg", "--min-area", -5), "--min-area must be >= 0"),
        ((seg_run, "--output", tmp_path / "p.kml"), "unknown format '.kml'; expected a .tif / .tiff (Cloud-Optimized "
                                                    "GeoTIFF) or .zarr path, or polygons: .gpkg, .geojson, .fgb"),
        ((tiny_mae_run, "--output", tmp_path / "p.gpkg"), "has no head"),
    ]
    for (run, *args), message in cases:
        code, out, err = cli(capsys, run, "--input", lsat7_store, *args)
        assert (code, out) == (1, "") and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_writer_process_writes_the_same_polygons_with_their_probabilities(
        seg_run: Path, lsat7_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A large scene's polygons are written by a child process started once the model has run (PIPED_PIXELS 0 makes
    every scene large): the same features, mean probabilities included, as when written in the process itself."""
    import subprocess

    from registry_gfm.predict import _predict, _vectors

    options = ("--tile", 32, "--overlap", 8, "--block-size", 128)
    assert cli(capsys, seg_run, "--input", lsat7_store, "--output", tmp_path / "here.gpkg", *options)[0] == 0
    events: list[str] = []
    popen, predict_raster = subprocess.Popen, _predict._predict_raster

    def spy_popen(*args: object, **kwargs: object) -> object:
        events.append("writer process")
        return popen(*args, **kwargs)  # type: ignore[call-overload]

    def spy_predict(*args: object, **kwargs: object) -> object:
        events.append("model")
        return predict_raster(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_vectors, "PIPED_PIXELS", 0)
    monkeypatch.setattr(subprocess, "Popen", spy_popen)
    monkeypatch.setattr(_predict, "_predict_raster", spy_predict)
    code, _, err = cli(capsys, seg_run, "--input", lsat7_store, "--output", tmp_path / "piped.gpkg", *options)
    assert (code, err) == (0, "") and events == ["model", "writer process"]
    assert polygons(tmp_path / "piped.gpkg") == polygons(tmp_path / "here.gpkg")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
