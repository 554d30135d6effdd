"""``predict``'s inputs and outputs on real files: GeoTIFF, stac-zarr datacube and STAC item inputs; COG and
Zarr outputs with the input's georeference; every bad input refused with a message naming it."""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio
import zarr
from rasterio.crs import CRS
from rasterio.transform import Affine

from registry_gfm.cube.reader import open_cube
from registry_gfm.ingest.plan import PlanError
from registry_gfm.predict import PredictError, Scene, check_scene, open_scene, predict_blocks, predict_to_file

TRANSFORM = Affine(30.0, 0.0, 630000.0, 0.0, -30.0, 228000.0)
LSAT7_BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]


def write_tif(path: Path, data: np.ndarray, names: list[str] | None = None, nodata: float | None = 0,
              transform: Affine | None = TRANSFORM, crs: str | None = "EPSG:32119") -> Path:
    profile = {"driver": "GTiff", "dtype": str(data.dtype), "count": data.shape[0], "height": data.shape[1],
               "width": data.shape[2], "crs": crs, "transform": transform, "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(names or [], start=1):
            dst.set_band_description(i, name)
    return path


class Identity:
    """The input bands as outputs (values), optionally as class probabilities (``classes``)."""

    factor = multiple = 1

    def __init__(self, bands: list[str], classes: list[str] | None = None) -> None:
        self.bands, self.channels, self.classes = bands, len(bands), classes

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return tiles.copy()


@pytest.fixture(scope="module")
def scene_tif(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 3-band uint16 GeoTIFF of 520 x 600 px (big enough for COG overviews) with a nodata corner."""
    rng = np.random.default_rng(3)
    data = rng.integers(1, 3000, size=(3, 520, 600)).astype(np.uint16)
    data[:, :40, :50] = 0
    return write_tif(tmp_path_factory.mktemp("io") / "scene.tif", data, names=["B02", "B03", "B04"]), data


def test_a_class_map_cog_has_the_inputs_georeference_overviews_and_nodata(scene_tif: tuple[Path, np.ndarray],
                                                                         tmp_path: Path) -> None:
    tif, data = scene_tif
    model = Identity(["B02", "B03", "B04"], classes=["water", "forest", "urban"])
    result = predict_to_file(open_scene(tif, model.bands), model, tmp_path / "classes.tif")
    with rasterio.open(tif) as src, rasterio.open(result.output) as out:
        assert out.crs == src.crs and out.transform == src.transform and out.shape == src.shape
        assert out.dtypes == ("uint8",) and out.nodata == 255 and out.overviews(1) == [2, 4]
        assert out.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and out.compression.name == "deflate"
        assert out.block_shapes == [(256, 256)] and json.loads(out.tags()["classes"]) == ["water", "forest", "urban"]
        classes = out.read(1)
    valid = (data != 0).all(axis=0)
    assert np.array_equal(classes[valid], np.argmax(data, axis=0)[valid])
    assert (classes[~valid] == 255).all()
    probs = predict_to_file(open_scene(tif, model.bands), model, tmp_path / "probs.tif", probabilities=True)
    with rasterio.open(probs.output) as out:
        assert out.count == 3 and out.dtypes[0] == "float32" and np.isnan(out.nodata)
        assert out.descriptions == ("water", "forest", "urban") and out.transform == TRANSFORM


def test_a_zarr_output_is_a_datacube_our_reader_and_predict_open(scene_tif: tuple[Path, np.ndarray],
                                                                tmp_path: Path) -> None:
    tif, data = scene_tif
    model = Identity(["B02", "B03", "B04"])
    result = predict_to_file(open_scene(tif, model.bands), model, tmp_path / "out.zarr", block_size=256)
    info = open_cube(result.output)
    assert info.shape == (1, 3, 520, 600) and info.band_names == ("feature_0", "feature_1", "feature_2")
    assert info.transform == tuple(TRANSFORM)[:6] and info.epsg == 32119
    assert CRS.from_wkt(info.crs_wkt) == CRS.from_epsg(32119)
    valid = np.asarray(zarr.open_group(str(result.output), mode="r")["valid"][0]).astype(bool)
    assert np.array_equal(valid, (data != 0).all(axis=0))
    again = open_scene(result.output, ["feature_0", "feature_2"])  # a prediction is a valid predict input
    assert again.transform == tuple(TRANSFORM)[:6]
    np.testing.assert_array_equal(again.image[1].compute()[valid], data[2][valid].astype(np.float32))


def test_a_stac_zarr_datacube_input_is_read_in_physical_units_at_its_time_step(lsat7_store: Path,
                                                                              tmp_path: Path) -> None:
    info = open_cube(lsat7_store)
    scene = open_scene(lsat7_store, ["red", "nir08"])
    assert scene.shape == (443, 489) and scene.transform == info.transform and scene.bands == ("red", "nir08")
    group = zarr.open_group(str(lsat7_store), mode="r")
    raw = np.asarray(group["image"][0, 2:4])
    scale = np.asarray(info.scale[0], np.float32)[2:4, None, None]
    offset = np.asarray(info.offset[0], np.float32)[2:4, None, None]
    valid = np.asarray(group["valid"][0]).astype(bool)
    out = predict_blocks(scene, Identity(["red", "nir08"]), tile=64, overlap=16, block_size=128).compute()
    expected = raw.astype(np.float32) * scale + offset
    assert np.array_equal(out[:, valid], expected[:, valid]) and np.isnan(out[:, ~valid]).all()
    result = predict_to_file(scene, Identity(["red", "nir08"]), tmp_path / "lsat7.tif")
    with rasterio.open(result.output) as dst:
        assert dst.crs == CRS.from_wkt(info.crs_wkt) and tuple(dst.transform)[:6] == info.transform
    with pytest.raises(PredictError, match=r"--time 3: datacube .* has 1 time steps \(0 .. 0\)"):
        open_scene(lsat7_store, ["red"], time=3)
    with pytest.raises(Exception, match="band 'B99' is not in the store; its bands are blue"):
        open_scene(lsat7_store, ["red", "B99"])


def _stac_item(folder: Path, assets: dict[str, tuple[str, np.ndarray]]) -> Path:
    """A STAC item JSON file whose assets are single-band uint16 GeoTIFFs beside it (scale 1e-4, nodata 0)."""
    doc: dict = {
        "type": "Feature", "stac_version": "1.1.0", "id": "scene-1",
        "stac_extensions": ["https://stac-extensions.github.io/projection/v2.0.0/schema.json",
                            "https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
        "geometry": {"type": "Polygon", "coordinates": [[[-78.7, 35.7], [-78.6, 35.7], [-78.6, 35.8], [-78.7, 35.7]]]},
        "bbox": [-78.7, 35.7, -78.6, 35.8], "links": [], "assets": {},
        "properties": {"datetime": "2021-05-01T10:00:00Z", "proj:code": "EPSG:32119"},
    }
    for key, (common, data) in assets.items():
        write_tif(folder / f"{key}.tif", data[None], nodata=0)
        doc["assets"][key] = {"href": f"{key}.tif", "type": "image/tiff; application=geotiff", "roles": ["data"],
                              "eo:bands": [{"name": key, "common_name": common}],
                              "raster:bands": [{"data_type": "uint16", "nodata": 0, "scale": 0.0001}]}
    path = folder / "item.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_stac_item_input_finds_each_band_by_common_name(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    red, nir = (rng.integers(0, 5000, size=(70, 90)).astype(np.uint16) for _ in range(2))
    item = _stac_item(tmp_path, {"B04": ("red", red), "B8A": ("nir08", nir)})
    scene = open_scene(item, ["nir08", "red"])
    assert scene.shape == (70, 90) and scene.transform == tuple(TRANSFORM)[:6]
    assert scene.time == np.datetime64("2021-05-01T10:00:00")
    out = predict_blocks(scene, Identity(["nir08", "red"]), tile=32, overlap=8).compute()
    valid = (red != 0) & (nir != 0)
    expected = np.stack([nir, red]).astype(np.float32) * np.float32(0.0001)
    assert np.array_equal(out[:, valid], expected[:, valid]) and np.isnan(out[:, ~valid]).all()
    with pytest.raises(PlanError, match=r"STAC item 'scene-1' has no asset for band 'swir16'.*assets are B04, B8A"):
        open_scene(item, ["red", "swir16"])


def test_bands_are_matched_by_identity_and_band_map(scene_tif: tuple[Path, np.ndarray]) -> None:
    tif, _ = scene_tif
    renamed = open_scene(tif, ["blue", "B03", "red"], names=["blue", "B03", "red"])
    assert renamed.bands == ("blue", "B03", "red")
    with pytest.raises(PredictError, match=r"band 'nir08' is missing; the input has bands B02, B03, B04"):
        open_scene(tif, ["B02", "nir08"])


def test_a_missing_band_is_named_with_the_bands_the_input_has(scene_tif: tuple[Path, np.ndarray]) -> None:
    tif, _ = scene_tif
    with pytest.raises(PredictError) as err:
        open_scene(tif, ["B02", "swir16", "B04", "B8A"])
    message = str(err.value)
    assert "band 'swir16' is missing" in message and "band 'B8A' is missing" in message
    assert "the input has bands B02, B03, B04" in message and "--band-map" in message


def test_band_names_must_name_every_band_of_the_file(scene_tif: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    tif, data = scene_tif
    with pytest.raises(PredictError, match=r"--bands names 2 bands \(red, green\) but input .* has 3"):
        open_scene(tif, ["red"], names=["red", "green"])
    unnamed = write_tif(tmp_path / "unnamed.tif", data[:2, :50, :50])
    with pytest.raises(PredictError, match=r"its 2 bands have no names .* --bands red,green,blue \(it has 2 bands, "
                                           r"the model needs 3\)"):
        open_scene(unnamed, ["red", "green", "blue"])


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_scene_without_georeference_is_refused(tmp_path: Path) -> None:
    data = np.ones((1, 20, 20), np.uint16)
    no_crs = write_tif(tmp_path / "no_crs.tif", data, names=["red"], crs=None)
    with pytest.raises(PredictError, match="is not georeferenced: it has no CRS"):
        open_scene(no_crs, ["red"])
    pixels = write_tif(tmp_path / "pixels.tif", data, names=["red"], transform=Affine.identity())
    with pytest.raises(PredictError, match="is not georeferenced: its transform is the identity"):
        open_scene(pixels, ["red"])


def test_an_empty_or_all_nodata_scene_is_refused(tmp_path: Path) -> None:
    empty = Scene("empty.tif", da.zeros((1, 0, 5), dtype=np.float32), da.zeros((0, 5), dtype=bool), ("red",),
                  CRS.from_epsg(32119).to_wkt(), tuple(TRANSFORM)[:6])
    with pytest.raises(PredictError, match=r"input empty.tif is empty: 1 bands of 0 x 5 pixels"):
        check_scene(empty)
    blank = write_tif(tmp_path / "blank.tif", np.zeros((1, 30, 30), np.uint16), names=["red"])
    with pytest.raises(PredictError, match=r"has no valid pixel .* nothing was written"):
        predict_to_file(open_scene(blank, ["red"]), Identity(["red"]), tmp_path / "blank_out.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank.tif"]  # no output, no temporary files


def test_an_unreadable_or_missing_input_is_an_error_naming_it(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff at all" * 10)
    with pytest.raises(PredictError, match=r"cannot read input .*junk.tif: .*expected a GeoTIFF / COG"):
        open_scene(junk, ["red"])
    with pytest.raises(PredictError, match=r"input .*nowhere.tif does not exist"):
        open_scene(tmp_path / "nowhere.tif", ["red"])


def test_an_existing_output_is_kept_unless_overwrite(scene_tif: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    tif, _ = scene_tif
    scene, model = open_scene(tif, ["B02", "B03", "B04"]), Identity(["B02", "B03", "B04"])
    for name in ("old.tif", "old.zarr"):
        old = tmp_path / name
        predict_to_file(scene, model, old, tile=32, overlap=8, block_size=1024)
        before = sorted((p.relative_to(old), p.read_bytes()) for p in old.rglob("*") if p.is_file()) \
            if old.is_dir() else old.read_bytes()
        with pytest.raises(PredictError, match=f"--output .*{name} exists; pass --overwrite"):
            predict_to_file(scene, model, old)
        after = sorted((p.relative_to(old), p.read_bytes()) for p in old.rglob("*") if p.is_file()) \
            if old.is_dir() else old.read_bytes()
        assert after == before
        predict_to_file(scene, model, old, overwrite=True, probabilities=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.tif", "old.zarr"]


class Failing(Identity):
    """Fails on its third call, as a model running out of memory would."""

    def __init__(self, bands: list[str]) -> None:
        super().__init__(bands)
        self.calls = 0

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("model failed")
        return super().__call__(tiles, valid)


def test_a_failed_prediction_leaves_the_old_output_and_no_temporary_files(scene_tif: tuple[Path, np.ndarray],
                                                                          tmp_path: Path) -> None:
    tif, _ = scene_tif
    old = tmp_path / "out.tif"
    bands = ["B02", "B03", "B04"]
    predict_to_file(open_scene(tif, bands), Identity(bands), old, scheduler="synchronous")  # an earlier prediction
    previous = old.read_bytes()
    with pytest.raises(RuntimeError, match="model failed"):
        predict_to_file(open_scene(tif, bands), Failing(bands), old, overwrite=True, scheduler="synchronous")
    assert old.read_bytes() == previous
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_overwrite_replaces_an_earlier_prediction_and_nothing_else(scene_tif: tuple[Path, np.ndarray],
                                                                  tmp_path: Path) -> None:
    tif, _ = scene_tif
    bands = ["B02", "B03", "B04"]
    for name in ("out.tif", "out.zarr"):
        predict_to_file(open_scene(tif, bands), Identity(bands), tmp_path / name, scheduler="synchronous")
        predict_to_file(open_scene(tif, bands), Identity(bands), tmp_path / name, overwrite=True,
                        scheduler="synchronous")
    (tmp_path / "mine.zarr").mkdir()
    (tmp_path / "mine.zarr" / "notes.txt").write_text("not a prediction")
    (tmp_path / "theirs.tif").write_bytes(tif.read_bytes())  # a GeoTIFF nobody marked
    for name in ("mine.zarr", "theirs.tif"):
        with pytest.raises(PredictError, match="carries no registry-core marker"):
            predict_to_file(open_scene(tif, bands), Identity(bands), tmp_path / name, overwrite=True)
    with pytest.raises(PredictError, match="an input of this command"):
        predict_to_file(open_scene(tif, bands), Identity(bands), tif, overwrite=True)
    assert (tmp_path / "mine.zarr" / "notes.txt").read_text() == "not a prediction"


class WrongShape(Identity):
    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return tiles[:, :, ::2, ::2]


def test_tiling_options_and_model_outputs_are_checked(scene_tif: tuple[Path, np.ndarray]) -> None:
    tif, _ = scene_tif
    scene = open_scene(tif, ["B02", "B03", "B04"])
    model = Identity(["B02", "B03", "B04"])
    model.multiple = 16  # type: ignore[misc]
    with pytest.raises(PredictError, match=r"--tile 40 must be a multiple of 16 \(the model's patch size\); try 32"):
        predict_blocks(scene, model, tile=40, overlap=8)
    with pytest.raises(PredictError, match=r"--overlap 32 must be at least 0 and smaller than --tile 32"):
        predict_blocks(scene, model, tile=32, overlap=32)
    with pytest.raises(PredictError, match=r"--overlap -1 .*; --batch-size 0 must be between 1 and 4096 tiles"):
        predict_blocks(scene, model, tile=32, overlap=-1, batch_size=0)
    with pytest.raises(PredictError, match=r"model WrongShape returned shape \((\d+), 3, 16, 16\) .* expected "
                                           r"\(\1, 3, 32, 32\)"):
        predict_blocks(scene, WrongShape(["B02", "B03", "B04"]), tile=32, overlap=8).compute(scheduler="synchronous")
    with pytest.raises(PredictError, match=r"model Identity: attribute 'channels' should be a positive integer"):
        bad = Identity(["B02"])
        bad.channels = 0
        predict_blocks(scene, bad)


def test_a_second_writer_of_one_output_is_refused(scene_tif: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    from registry_core import OutputPathError
    from registry_core.atomic import writer_lock

    tif, _ = scene_tif
    bands = ["B02", "B03", "B04"]
    busy = pytest.raises(OutputPathError, match=r"is being written by another process \(pid \d+\)")
    with writer_lock(tmp_path / "out.tif", "--output"), busy:  # another predict into out.tif, as flock sees it
        predict_to_file(open_scene(tif, bands), Identity(bands), tmp_path / "out.tif", scheduler="synchronous")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_complex_pixels_are_refused_naming_the_bands(tmp_path: Path) -> None:
    data = (np.ones((2, 8, 8)) + 1j * np.ones((2, 8, 8))).astype(np.complex64)
    tif = write_tif(tmp_path / "slc.tif", data, names=["B02", "B03"], nodata=None)
    with pytest.raises(PredictError, match=r"input .*slc.tif: bands \[1, 2\] hold complex numbers; expected real"):
        open_scene(tif, ["B02", "B03"])
