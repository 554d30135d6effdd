"""Labels in zarr-chips: the shipped land-cover rasters (EPSG:3358) on the Landsat 7 datacube grid (EPSG:32119)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import zarr
from pyproj import Transformer
from rasterio.transform import Affine

from registry_core import ConfigError, compose, get_registry
from registry_gfm.chips.zarr_chips import ZarrChips
from registry_gfm.cube.reader import DatacubeError, open_cube

DATA = Path(__file__).resolve().parents[4] / "tests" / "data" / "gfm_lsat7"
STRATA = DATA / "strata.tif"
SPARSE = DATA / "landsat96_labelled_pixels.tif"
CLASSES = [1, 2, 3, 4, 5, 6, 7]


def chips(store: Path, **options: Any) -> ZarrChips:
    opts: dict[str, Any] = {"store": str(store), "chip_size": 32, "labels": str(STRATA), "num_classes": 7,
                            "label_values": CLASSES, "val_fraction": 0.2}
    opts.update(options)
    source: ZarrChips = get_registry().build("data_source", "zarr-chips", **opts)
    source.prepare()
    return source


def test_label_chips_line_up_with_the_raster_at_the_same_place_on_the_ground(lsat7_store: Path) -> None:
    source = chips(lsat7_store, sampling="grid")
    info = open_cube(lsat7_store)
    a, _, c, _, e, f = info.transform
    to_labels = Transformer.from_crs(f"EPSG:{info.epsg}", "EPSG:3358", always_xy=True)
    ds = source.dataset("train")
    with rasterio.open(STRATA) as raster:
        strata = raster.read(1)
        for index in (0, len(ds) // 2, len(ds) - 1):
            item = ds[index]
            _, y0, x0 = item["window"].tolist()
            label = item["label"].numpy()
            valid = item["valid"].numpy()[0]
            assert label.shape == (32, 32) and label.dtype == np.int64
            for dy, dx in ((0, 0), (5, 17), (31, 31), (16, 3)):
                if not valid[dy, dx]:
                    assert label[dy, dx] == 255  # no usable pixel: no label
                    continue
                x, y = to_labels.transform(c + a * (x0 + dx + 0.5), f + e * (y0 + dy + 0.5))
                row, col = raster.index(x, y)
                assert label[dy, dx] == CLASSES.index(int(strata[row, col]))


def test_labels_are_reprojected_once_and_cached_next_to_the_store(lsat7_store: Path) -> None:
    first = chips(lsat7_store).chip_labels()
    assert first is not None and first.cache is not None
    cache = Path(first.cache)
    assert cache.parent == lsat7_store.parent and cache.name.startswith("datacube.zarr.labels-")
    stamp = cache.stat().st_mtime_ns
    again = chips(lsat7_store).chip_labels()
    assert again is not None and again.cache == first.cache and cache.stat().st_mtime_ns == stamp
    other = chips(lsat7_store, num_classes=8, label_values=[0, *CLASSES], ignore_index=-1).chip_labels()
    assert other is not None and other.cache != first.cache  # different options, different cache
    labels = np.load(cache)
    assert labels.shape == open_cube(lsat7_store).shape[2:]
    assert set(np.unique(labels).tolist()) <= {*range(7), 255}


def test_classification_takes_the_majority_or_the_centre_class(lsat7_store: Path) -> None:
    seg = chips(lsat7_store, sampling="grid").dataset("val")
    major = chips(lsat7_store, sampling="grid", task="classification").dataset("val")
    centre = chips(lsat7_store, sampling="grid", task="classification", label_rule="centre").dataset("val")
    for i in range(3):
        m = seg[i]["label"].numpy()
        counts = np.bincount(m[m != 255], minlength=7)
        assert major[i]["label"].shape == () and int(major[i]["label"]) == int(np.argmax(counts))
    seg_windows = {tuple(seg[i]["window"].tolist()): seg[i]["label"].numpy() for i in range(len(seg))}
    for i in range(len(centre)):
        item = centre[i]
        assert int(item["label"]) == seg_windows[tuple(item["window"].tolist())][16, 16]


def test_min_labelled_drops_sparsely_labelled_chips(lsat7_store: Path) -> None:
    dense = chips(lsat7_store, sampling="grid", labels=str(SPARSE))
    assert len(dense.dataset("train")) > 0  # any labelled pixel is enough by default
    with pytest.raises(DatacubeError, match=r"min_labelled=0\.5"):
        chips(lsat7_store, sampling="grid", labels=str(SPARSE), min_labelled=0.5).dataset("train")
    random = chips(lsat7_store, sampling="random", samples_per_epoch=8, labels=str(SPARSE), min_labelled=0.01)
    for i in range(4):
        label = random.dataset("train")[i]["label"].numpy()
        assert (label != 255).mean() >= 0.01


def test_val_chips_never_overlap_train_chips(lsat7_store: Path) -> None:
    for sampling in ("grid", "random"):
        source = chips(lsat7_store, sampling=sampling, samples_per_epoch=64)
        rows = {split: [int(source.dataset(split)[i]["window"][1]) for i in range(len(source.dataset(split)))]
                for split in ("train", "val")}
        assert max(rows["train"]) + 32 <= min(rows["val"])


def test_a_store_variable_can_hold_the_labels(tmp_path: Path, lsat7_store: Path) -> None:
    import shutil

    store = tmp_path / "cube.zarr"
    shutil.copytree(lsat7_store, store)
    grid = np.load(chips(lsat7_store).chip_labels().cache)  # type: ignore[union-attr,arg-type]
    group = zarr.open_group(store, mode="a")
    group.create_array("landcover", data=grid)
    source = chips(store, labels="store:landcover", label_values=None, sampling="grid")
    ref = chips(lsat7_store, sampling="grid")
    assert np.array_equal(source.dataset("val")[2]["label"].numpy(), ref.dataset("val")[2]["label"].numpy())
    with pytest.raises(DatacubeError, match="no label variable 'nope'"):
        chips(store, labels="store:nope", label_values=None).dataset("train")


def _write(path: Path, data: np.ndarray, transform: Affine, crs: str | None = "EPSG:3358") -> Path:
    profile = {"driver": "GTiff", "dtype": str(data.dtype), "count": data.shape[0], "width": data.shape[2],
               "height": data.shape[1], "transform": transform, "nodata": 0}
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def test_a_raster_elsewhere_is_an_error_naming_it_and_both_extents(tmp_path: Path, lsat7_store: Path) -> None:
    far = _write(tmp_path / "far.tif", np.ones((1, 10, 10), np.uint8), Affine(28.5, 0, 100000, 0, -28.5, 100000))
    with pytest.raises(DatacubeError, match=r"label raster .*far\.tif does not overlap datacube .*datacube covers"):
        chips(lsat7_store, labels=str(far)).dataset("train")


def test_classes_outside_num_classes_are_an_error_naming_the_values(tmp_path: Path, lsat7_store: Path) -> None:
    with pytest.raises(DatacubeError, match=r"strata\.tif holds values \[6, 7\] outside the 5 classes"):
        chips(lsat7_store, num_classes=5, label_values=[1, 2, 3, 4, 5]).dataset("train")
    with pytest.raises(DatacubeError, match=r"holds values \[7\] outside the 7 classes"):
        chips(lsat7_store, label_values=None).dataset("train")  # raw values 1..7 are not 0..6
    two = _write(tmp_path / "two.tif", np.ones((2, 8, 8), np.uint8), Affine(28.5, 0, 630534, 0, -28.5, 228114))
    with pytest.raises(DatacubeError, match=r"two\.tif has 2 bands"):
        chips(lsat7_store, labels=str(two)).dataset("train")
    bare = _write(tmp_path / "bare.tif", np.ones((1, 8, 8), np.uint8), Affine(28.5, 0, 630534, 0, -28.5, 228114),
                  crs=None)
    with pytest.raises(DatacubeError, match=r"bare\.tif has no CRS"):
        chips(lsat7_store, labels=str(bare)).dataset("train")
    with pytest.raises(DatacubeError, match=r"missing\.tif does not exist"):
        chips(lsat7_store, labels=str(tmp_path / "missing.tif")).dataset("train")


def test_label_options_are_checked_when_composed(lsat7_store: Path) -> None:
    base = {"tokenizer": {"use": "patch", "patch_size": 4}, "backbone": {"use": "vit", "embed_dim": 32, "depth": 1,
            "heads": 2}, "objective": {"use": "mae"}}
    cases = [({"labels": str(STRATA)}, "needs 'num_classes'"),
             ({"task": "segmentation"}, "needs 'labels'"),
             ({"labels": str(STRATA), "num_classes": 7, "ignore_index": 3}, "'ignore_index' 3 is a class index"),
             ({"labels": str(STRATA), "num_classes": 7, "label_values": [1, 2]}, "gives 2 values for num_classes=7"),
             ({"labels": str(STRATA), "num_classes": 2, "class_names": ["a"]}, "gives 1 names for num_classes=2"),
             ({"labels": str(STRATA), "num_classes": 7, "task": "detection"}, "task")]
    for options, message in cases:
        data = {"use": "zarr-chips", "store": str(lsat7_store), **options}
        with pytest.raises(ConfigError, match=message):
            compose({**base, "data": data})
