"""The deployment engine on real GeoTIFFs: exact per-pixel outputs, no seams, full coverage, determinism
across batch sizes, block sizes and schedulers, and patch-resolution embeddings."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import zarr
from rasterio.transform import Affine

from registry_gfm.predict import Scene, open_scene, predict_blocks, predict_to_file

TRANSFORM = Affine(30.0, 0.0, 630000.0, 0.0, -30.0, 228000.0)
BANDS = ["blue", "green", "red"]


def write_tif(path: Path, data: np.ndarray, names: list[str] | None = None, nodata: float | None = 0,
              transform: Affine = TRANSFORM, crs: str | None = "EPSG:32119") -> Path:
    """A tiled multi-band GeoTIFF with band descriptions."""
    profile = {"driver": "GTiff", "dtype": str(data.dtype), "count": data.shape[0], "height": data.shape[1],
               "width": data.shape[2], "crs": crs, "transform": transform, "nodata": nodata, "tiled": True,
               "blockxsize": 128, "blockysize": 128}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(names or [], start=1):
            dst.set_band_description(i, name)
    return path


def smooth(height: int, width: int, bands: int = 1, wave: float = 0.05) -> np.ndarray:
    """A smooth positive float32 image (bands, height, width): a tilted plane plus a slanted wave."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    out = [1 + 0.004 * y + 0.003 * x + wave * np.sin(y / (7.3 + b) + x / 11.1) for b in range(bands)]
    return np.stack(out).astype(np.float32)


class PixelLinear:
    """out = A @ x + b at every pixel, computed channel by channel (elementwise float32: exact to reproduce)."""

    factor = multiple = 1

    def __init__(self, a: np.ndarray, b: np.ndarray, bands: list[str]) -> None:
        self.a, self.b, self.bands, self.channels = a.astype(np.float32), b.astype(np.float32), bands, len(a)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(..., C, H, W) -> (..., K, H, W)."""
        out = []
        for k in range(self.channels):
            acc = np.full(x[..., 0, :, :].shape, self.b[k], np.float32)
            for c in range(x.shape[-3]):
                acc = acc + self.a[k, c] * x[..., c, :, :]
            out.append(acc)
        return np.stack(out, axis=-3)

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return self.apply(tiles)


class ZeroPaddedBlur:
    """A 3x3 box blur with zero padding at the tile border: tile edges read dark, as a CNN's do."""

    bands = ("red",)
    channels = factor = multiple = 1

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        padded = np.pad(tiles, ((0, 0), (0, 0), (1, 1), (1, 1)))
        size = tiles.shape[-1]
        return sum(padded[:, :, i : i + size, j : j + size] for i in range(3) for j in range(3)) / np.float32(9)


class PositionalGain:
    """A gain that grows across the tile: its output depends on where the pixel sits within the tile."""

    bands = ("red",)
    channels = factor = multiple = 1

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        ramp = np.linspace(0, 1, tiles.shape[-1], dtype=np.float32)
        return tiles * (1 + 0.2 * ramp[None, None, :, None] * ramp[None, None, None, :])


class PositionalMix(ZeroPaddedBlur):
    """Both: the zero-padded blur times the positional gain (a model no two tiles agree on)."""

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return PositionalGain()(super().__call__(tiles, valid), valid)


class PatchMean:
    """Per-patch embeddings: the mean of each band over each 4 x 4 patch, then its square (K = 2 C)."""

    factor = multiple = 4
    bands = BANDS
    channels = 6

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        b, c, h, w = tiles.shape
        means = tiles.astype(np.float64).reshape(b, c, h // 4, 4, w // 4, 4).mean(axis=(3, 5))
        return np.concatenate([means, means**2], axis=1).astype(np.float32)


def read_tif(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(), {"crs": src.crs, "transform": src.transform, "nodata": src.nodata,
                            "overviews": src.overviews(1), "descriptions": src.descriptions}


def test_a_per_pixel_linear_model_is_reproduced_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(1, 10000, size=(3, 283, 301)).astype(np.uint16)
    data[:, 100:120, 40:90] = 0  # nodata
    tif = write_tif(tmp_path / "in.tif", data, names=["red", "green", "blue"])
    model = PixelLinear(rng.normal(size=(2, 3)), rng.normal(size=2), BANDS)
    scene = open_scene(tif, model.bands)
    result = predict_to_file(scene, model, tmp_path / "out.tif", tile=32, overlap=8, block_size=96)
    out, meta = read_tif(result.output)
    expected = model.apply(data[::-1].astype(np.float32))  # the file holds red, green, blue; the model wants b, g, r
    valid = (data != 0).all(axis=0)
    assert out.dtype == np.float32 and out.shape == (2, 283, 301)
    assert np.array_equal(out[:, valid], expected[:, valid])
    assert np.isnan(out[:, ~valid]).all()
    assert meta["descriptions"] == ("feature_0", "feature_1")


def _border_ratio(out: np.ndarray, tile: int, overlap: int) -> float:
    """Mean |gradient| across the rows / columns where a tile starts or ends, over the mean elsewhere."""
    ratios = []
    for axis in (0, 1):
        diffs = np.abs(np.diff(out, axis=axis)).mean(axis=1 - axis)  # diffs[r]: between r and r + 1
        size = out.shape[axis]
        stride = tile - overlap
        edges = {e for k in range(size // stride + 1) for e in (k * stride, k * stride + tile - 1)}
        border = {d for e in edges for d in (e - 1, e)}
        inner = [d for d in range(1, size - 2) if d not in border]  # not touching the scene's own edges
        ratios.append(diffs[[d for d in sorted(border) if 1 <= d < size - 2]].mean() / diffs[inner].mean())
    return max(ratios)


@pytest.mark.parametrize(("model", "wave"), [(PositionalGain(), 0.05), (ZeroPaddedBlur(), 0.0)])
def test_cosine_blending_leaves_no_seams_where_plain_averaging_does(model: object, wave: float,
                                                                   tmp_path: Path) -> None:
    tif = write_tif(tmp_path / "in.tif", smooth(250, 230, wave=wave), names=["red"], nodata=None)
    scene = open_scene(tif, ["red"])
    ratio = {blend: _border_ratio(predict_blocks(scene, model, tile=64, overlap=16, blend=blend).compute()[0], 64, 16)
             for blend in ("cosine", "none")}
    assert ratio["cosine"] <= 1.05
    assert ratio["none"] > 2  # the seams this test would catch


def test_every_valid_pixel_of_an_odd_sized_scene_gets_a_value(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(1, 255, size=(3, 1001, 777)).astype(np.uint8)
    data[0, 500:560, 700:] = 0  # one band missing: the pixel is not valid
    data[:, rng.integers(0, 1001, 300), rng.integers(0, 777, 300)] = 0
    tif = write_tif(tmp_path / "odd.tif", data, names=BANDS)
    model = PixelLinear(np.eye(3), np.zeros(3), BANDS)
    result = predict_to_file(open_scene(tif, BANDS), model, tmp_path / "odd_out.tif", tile=64, overlap=16)
    out, _ = read_tif(result.output)
    valid = (data != 0).all(axis=0)
    assert out.shape == (3, 1001, 777)
    assert np.isfinite(out[:, valid]).all() and np.isnan(out[:, ~valid]).all()
    assert np.array_equal(out[:, valid], data[:, valid].astype(np.float32))
    assert result.pixels == 1001 * 777 and "odd_out.tif" in result.summary()


def _zarr_image(path: Path) -> np.ndarray:
    return np.asarray(zarr.open_group(str(path), mode="r")["image"][0])


@pytest.fixture(scope="module")
def mix_scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    tif = write_tif(tmp_path_factory.mktemp("mix") / "in.tif", smooth(157, 203), names=["red"], nodata=None)
    return open_scene(tif, ["red"])


def test_output_is_bit_identical_for_every_batch_size_block_size_and_local_scheduler(mix_scene: Scene,
                                                                                      tmp_path: Path) -> None:
    model = PositionalMix()
    outputs = []
    for i, (batch, block, scheduler) in enumerate([(16, 512, "threads"), (1, 512, "threads"), (7, 64, "threads"),
                                                   (16, 96, "synchronous"), (7, 200, "threads")]):
        out = tmp_path / f"out{i}.zarr"
        predict_to_file(mix_scene, model, out, tile=32, overlap=12, batch_size=batch, block_size=block,
                        scheduler=scheduler)
        outputs.append(_zarr_image(out))
    assert all(np.array_equal(outputs[0], o) for o in outputs[1:])
    # the blend does change the values: the check above would see a block-dependent blend
    assert not np.array_equal(outputs[0], predict_blocks(mix_scene, model, tile=32, overlap=12, blend="none").compute())


@pytest.mark.slow
def test_output_is_bit_identical_on_a_local_cluster(mix_scene: Scene, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the worker processes cannot import this test module
    # Names pickled by reference carry this module's import name (``plugins.gfm.tests...`` under importlib mode):
    # the workers, spawned with this process's sys.path, find it from the repository root however pytest started.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[4]))
    model = PositionalMix()
    predict_to_file(mix_scene, model, tmp_path / "threads.zarr", tile=32, overlap=12, block_size=64)
    predict_to_file(mix_scene, model, tmp_path / "cluster.zarr", tile=32, overlap=12, block_size=128, batch_size=5,
                    scheduler="local:2")
    assert np.array_equal(_zarr_image(tmp_path / "threads.zarr"), _zarr_image(tmp_path / "cluster.zarr"))


def test_embeddings_come_at_patch_resolution_with_the_transform_scaled(tmp_path: Path) -> None:
    data = (smooth(90, 70, bands=3) * 1000).astype(np.uint16)
    tif = write_tif(tmp_path / "in.tif", data, names=BANDS)
    scene = open_scene(tif, BANDS)
    result = predict_to_file(scene, PatchMean(), tmp_path / "emb.tif", tile=32, overlap=8, block_size=48)
    out, meta = read_tif(result.output)
    assert out.shape == (6, 23, 18)  # ceil(90 / 4), ceil(70 / 4): the partial last patch still gets a value
    assert meta["transform"] == Affine(120.0, 0.0, 630000.0, 0.0, -120.0, 228000.0)
    means = data.astype(np.float64)[:, :88, :68].reshape(3, 22, 4, 17, 4).mean(axis=(2, 4))
    np.testing.assert_allclose(out[:3, :22, :17], means, rtol=1e-6)
    np.testing.assert_allclose(out[3:, :22, :17], means**2, rtol=1e-6)
    assert np.isfinite(out).all()
    zarr_out = predict_to_file(scene, PatchMean(), tmp_path / "emb.zarr", tile=32, overlap=8, block_size=48)
    attrs = dict(zarr.open_group(str(zarr_out.output), mode="r").attrs)
    assert attrs["transform"] == [120.0, 0.0, 630000.0, 0.0, -120.0, 228000.0]
    np.testing.assert_array_equal(_zarr_image(zarr_out.output), out)


class CountingReads:
    """An in-memory scene read through ``__getitem__``, counting the reads of every window."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.reads: list[tuple[int, int]] = []

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        out = self.data[key]
        if out.size:  # (dask reads an empty window first, to learn the array's type)
            self.reads.append((key[1].start or 0, key[2].start or 0))
        return out


def test_each_input_block_is_read_once_though_tiles_reach_into_their_neighbours() -> None:
    import dask.array as da

    reader = CountingReads(smooth(300, 260))
    image = da.from_array(reader, chunks=(1, 128, 128), asarray=False, fancy=False)
    scene = Scene("memory", image, da.ones((300, 260), bool, chunks=128), ("red",), "", tuple(TRANSFORM)[:6])
    out = predict_blocks(scene, PositionalMix(), tile=32, overlap=8, block_size=128).compute(scheduler="threads")
    assert sorted(reader.reads) == sorted((y, x) for y in range(0, 300, 128) for x in range(0, 260, 128))
    # ... and the output is the one every block reading its own window gave (the scene in one piece)
    whole = Scene("memory", da.from_array(reader.data, chunks=-1), da.ones((300, 260), bool, chunks=-1), ("red",), "",
                  tuple(TRANSFORM)[:6])
    assert np.array_equal(out, predict_blocks(whole, PositionalMix(), tile=32, overlap=8, block_size=128).compute())


class CountingTiles:
    """A model wrapper that counts the tiles it is given (each tile of the grid should come exactly once); a
    ``compute_batch`` makes the engine give blocks whole groups of that many tiles where it can."""

    def __init__(self, model: object, compute_batch: int = 1) -> None:
        self.model, self.tiles, self.compute_batch = model, 0, compute_batch
        for name in ("bands", "channels", "factor", "multiple"):
            setattr(self, name, getattr(model, name))

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        self.tiles += len(tiles)
        return self.model(tiles, valid)  # type: ignore[operator]


def reference_blend(image: np.ndarray, valid: np.ndarray, model: object, tile: int, overlap: int) -> np.ndarray:
    """The definition the engine meets bit for bit: every tile of the global grid over the whole reflect-padded
    scene, one at a time in the grid's tile order, ``weights * output`` summed in float64 and divided by the
    summed weights; NaN where no input pixel of an output pixel is valid."""
    from registry_gfm.predict import TileGrid, blend_window
    from registry_gfm.predict._grid import reflect_index

    factor, channels = model.factor, model.channels  # type: ignore[attr-defined]
    grid = TileGrid(image.shape[1], image.shape[2], tile, overlap, factor)
    s, os_, ot = grid.stride, grid.out_stride, grid.out_tile
    ys = reflect_index(np.arange((grid.rows - 1) * s + tile), grid.height)
    xs = reflect_index(np.arange((grid.cols - 1) * s + tile), grid.width)
    pixels, mask = image[:, ys][:, :, xs], valid[ys][:, xs]
    weights = blend_window(ot, overlap // factor, "cosine")
    acc = np.zeros((channels, (grid.rows - 1) * os_ + ot, (grid.cols - 1) * os_ + ot))
    weight = np.zeros(acc.shape[1:])
    for i in range(grid.rows):
        for j in range(grid.cols):
            x = pixels[None, :, i * s : i * s + tile, j * s : j * s + tile]
            out = np.asarray(model(x, mask[None, i * s : i * s + tile, j * s : j * s + tile]), np.float32)[0]  # type: ignore[operator]
            acc[:, i * os_ : i * os_ + ot, j * os_ : j * os_ + ot] += weights * out
            weight[i * os_ : i * os_ + ot, j * os_ : j * os_ + ot] += weights
    out_h, out_w = grid.out_shape
    result = (acc / weight)[:, :out_h, :out_w].astype(np.float32)
    padded = np.zeros((out_h * factor, out_w * factor), bool)
    padded[: valid.shape[0], : valid.shape[1]] = valid
    result[:, ~padded.reshape(out_h, factor, out_w, factor).any(axis=(1, 3))] = np.nan
    return result


@pytest.mark.parametrize(("model", "tile", "overlap", "blocks"), [
    (PositionalMix(), 32, 12, (32, 48, 64, 100, 512)),  # blocks as small as a tile, a last block no tile starts in
    (PositionalMix(), 32, 0, (32, 96)),
    (PositionalMix(), 24, 20, (24, 40, 72)),  # a pixel under up to 6 x 6 tiles
    (PatchMean(), 32, 8, (32, 48, 96)),  # 4 input pixels per output pixel
])
def test_each_tile_is_computed_once_and_every_pixel_is_the_whole_grid_blended_in_order(
        model: object, tile: int, overlap: int, blocks: tuple[int, ...]) -> None:
    import dask.array as da

    from registry_gfm.predict import TileGrid

    bands = list(model.bands)  # type: ignore[attr-defined]
    data = np.concatenate([smooth(157, 203)] * len(bands))
    valid = np.ones((157, 203), bool)
    valid[40:47, 100:170] = False
    valid[150:, :9] = False
    expected = reference_blend(data, valid, model, tile, overlap)
    grid = TileGrid(157, 203, tile, overlap)
    for block, compute_batch in [(b, c) for b in blocks for c in (1, 16)]:
        counting = CountingTiles(model, compute_batch)
        scene = Scene("memory", da.from_array(data, chunks=(1, 64, 64)), da.from_array(valid, chunks=64), tuple(bands),
                      "", tuple(TRANSFORM)[:6])
        out = predict_blocks(scene, counting, tile=tile, overlap=overlap, block_size=block, batch_size=5).compute()
        assert counting.tiles == grid.rows * grid.cols, (block, compute_batch)
        assert np.array_equal(out, expected, equal_nan=True), (block, compute_batch)


@pytest.mark.parametrize(("size", "tile", "overlap", "factor"), [(157, 32, 12, 1), (530, 64, 16, 1), (203, 24, 20, 1),
                                                                 (90, 32, 8, 4), (64, 64, 0, 1)])
def test_blocks_own_every_tile_once_and_their_tiles_spill_only_into_the_block_before(size: int, tile: int,
                                                                                     overlap: int, factor: int) -> None:
    from registry_gfm.predict import TileGrid
    from registry_gfm.predict._engine import group_side, owned_tiles

    assert [group_side(n) for n in (1, 8, 16, 12)] == [1, 4, 4, 6]
    grid = TileGrid(size, size, tile, overlap, factor)
    out = grid.out_shape[0]
    for step, multiple in [(s, m) for s in range(grid.out_tile, out + grid.out_tile + 1, 7) for m in (1, 2, 4)]:
        edges = [(lo, min(lo + step, out)) for lo in range(0, out, step)]
        owned = owned_tiles(grid, edges, 0, multiple)
        assert [i for r in owned for i in r] == list(range(grid.rows)), step
        if multiple == 1:  # every block owns the tiles whose last pixel lies in it
            assert owned == [grid.tiles_owned(lo, hi, axis=0) for lo, hi in edges]
        for k, tiles in enumerate(owned):
            for i in tiles:
                first, last = i * grid.out_stride, min(i * grid.out_stride + grid.out_tile, out) - 1
                assert last < edges[k][1] and first >= (edges[k - 1][0] if k else 0), (step, multiple, k, i)


def test_a_geotiff_chunk_is_read_once_for_its_bands_and_its_mask(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_gfm.predict import _sources

    reads: list[tuple[int, int]] = []
    read = _sources.RasterWindows.__getitem__

    def counting(self: _sources.RasterWindows, key: tuple[slice, ...]) -> np.ndarray:
        out = read(self, key)
        if out.size:
            reads.append((key[1].start or 0, key[2].start or 0))
        return out

    monkeypatch.setattr(_sources.RasterWindows, "__getitem__", counting)
    tif = write_tif(tmp_path / "in.tif", (smooth(300, 260, bands=3) * 1000).astype(np.uint16), names=BANDS)
    scene = open_scene(tif, BANDS)
    predict_blocks(scene, PixelLinear(np.eye(3), np.zeros(3), BANDS), tile=32, overlap=8, block_size=128).compute()
    assert sorted(reads) == sorted(set(reads))  # the image and the valid mask share each read
    assert len(reads) == len({(y // 128, x // 128) for y, x in reads})
