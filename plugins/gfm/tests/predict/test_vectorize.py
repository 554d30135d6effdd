"""``vectorize``: a class map into polygons, streamed by blocks. On the real Landsat 7 strata map (tests/data): one
polygon per connected region whatever the block size, polygons that rasterize back to the map pixel for pixel, every
format readable with the map's CRS, and bad inputs refused in one line with nothing written."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fiona
import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import shapely
from rasterio.features import rasterize
from scipy import ndimage
from shapely.geometry import shape

from registry_core.cli import main
from registry_gfm.errors import PredictError
from registry_gfm.predict import vectorize_file
from registry_gfm.predict._vectors import vector_kind

from ..conftest import DATA

STRATA = DATA / "strata.tif"


def features(path: Path) -> list[tuple[int, int, bytes]]:
    """(class, pixels, normalised WKB) of every polygon, sorted: comparable whatever order they were written in."""
    if path.suffix == ".parquet":
        table = pq.read_table(path).to_pylist()
        rows = [(r["class"], r["pixels"], shapely.from_wkb(r["geometry"])) for r in table]
    else:
        with fiona.open(path) as src:
            rows = [(f["properties"]["class"], f["properties"]["pixels"], shape(f["geometry"])) for f in src]
    return sorted((c, p, shapely.normalize(g).wkb) for c, p, g in rows)


def strata() -> tuple[np.ndarray, rasterio.Affine]:
    with rasterio.open(STRATA) as src:
        return src.read(1), src.transform


def test_one_polygon_per_region_for_every_block_size_and_back_to_the_same_pixels(tmp_path: Path) -> None:
    values, transform = strata()
    regions = sum(ndimage.label(values == v)[1] for v in np.unique(values) if v != 0)  # 0 is the map's nodata
    found = {}
    for block in (128, 256, 512, 97):
        result = vectorize_file(STRATA, tmp_path / f"b{block}.gpkg", block_size=block)
        assert (result.features, result.dropped) == (regions, 0)
        found[block] = features(tmp_path / f"b{block}.gpkg")
    assert all(found[b] == found[128] for b in found)  # regions crossing block edges come out whole, identically
    with fiona.open(tmp_path / "b97.gpkg") as src:
        assert src.crs.to_epsg() == 3358
        shapes = [(shape(f["geometry"]), f["properties"]["class"]) for f in src]
        first = next(iter(src))["properties"]
    back = rasterize(shapes, out_shape=values.shape, transform=transform, fill=0, dtype="uint8")
    assert np.array_equal(back, values)
    assert first["area_m2"] == pytest.approx(first["pixels"] * abs(transform.a * transform.e))


@pytest.mark.parametrize("suffix", [".geojson", ".fgb", ".parquet"])
def test_every_format_holds_the_same_polygons_in_the_maps_crs(tmp_path: Path, suffix: str) -> None:
    vectorize_file(STRATA, tmp_path / "ref.gpkg", block_size=256)
    out = vectorize_file(STRATA, tmp_path / f"map{suffix}", block_size=256).output
    assert features(out) == features(tmp_path / "ref.gpkg")
    if suffix == ".parquet":
        geo = json.loads(pq.read_metadata(out).metadata[b"geo"])
        assert geo["columns"]["geometry"]["encoding"] == "WKB"
        assert geo["columns"]["geometry"]["crs"]["id"] == {"authority": "EPSG", "code": 3358}
    else:
        with fiona.open(out) as src:
            assert src.crs.to_epsg() == 3358


@pytest.mark.parametrize("suffix", [".gpkg", ".fgb"])
def test_reading_an_output_writes_nothing_beside_it(tmp_path: Path, suffix: str) -> None:
    # GDAL readers of a GeoPackage carrying dataset metadata write a .aux.xml side file: the mark is the layer's.
    import pyogrio

    out = vectorize_file(STRATA, tmp_path / f"map{suffix}", block_size=256).output
    assert len(pyogrio.read_dataframe(out)) > 0 and len(features(out)) > 0
    assert vector_kind(out) == "predict"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_min_area_fill_holes_and_simplify(tmp_path: Path) -> None:
    _, transform = strata()
    pixel = abs(transform.a * transform.e)
    full = features(vectorize_file(STRATA, tmp_path / "all.gpkg").output)
    kept = vectorize_file(STRATA, tmp_path / "big.gpkg", min_area=10 * pixel)
    big = features(kept.output)
    assert big == [f for f in full if f[1] >= 10] and kept.dropped == len(full) - len(big) > 0
    filled = [shapely.from_wkb(w) for *_, w in features(vectorize_file(STRATA, tmp_path / "f.gpkg",
                                                                        fill_holes=True).output)]
    assert all(not g.interiors for g in filled) and any(shapely.from_wkb(w).interiors for *_, w in full)
    simple = [shapely.from_wkb(w) for *_, w in features(vectorize_file(STRATA, tmp_path / "s.gpkg",
                                                                        simplify=2 * transform.a).output)]
    assert len(simple) == len(full) and all(g.is_valid for g in simple)
    assert sum(len(g.exterior.coords) for g in simple) < 0.8 * sum(len(shapely.from_wkb(w).exterior.coords)
                                                                   for *_, w in full)
    # a coverage: neighbours still share their edges, so no two polygons overlap
    assert shapely.union_all(simple).area == pytest.approx(sum(g.area for g in simple), rel=1e-9)


@pytest.mark.parametrize("dtype", ["int8", "int16", "uint16", "int32", "uint32"])
def test_class_maps_of_any_integer_type_keep_their_values(tmp_path: Path, dtype: str) -> None:
    # blocks are widened to a signed type with room below the map's values for "no region": a class at the type's
    # lowest value and nodata at its highest must not be taken for one another, or for beyond the map
    values, transform = strata()
    info = np.iinfo(dtype)
    valid = values != 0
    offset = int(info.min) - int(values[valid].min())  # the lowest class lands on the type's lowest value
    wide = np.where(valid, values.astype(np.int64) + offset, int(info.max)).astype(dtype)
    path = tmp_path / f"{dtype}.tif"
    with rasterio.open(path, "w", driver="GTiff", width=wide.shape[1], height=wide.shape[0], count=1, dtype=dtype,
                       nodata=int(info.max), crs="EPSG:3358", transform=transform) as dst:
        dst.write(wide, 1)
    ours = features(vectorize_file(path, tmp_path / f"{dtype}.gpkg", block_size=128).output)
    reference = features(vectorize_file(STRATA, tmp_path / "ref.gpkg", block_size=128).output)
    assert [(c - offset, p, w) for c, p, w in ours] == reference


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["vectorize", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bad_inputs_are_one_line_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    floats, no_crs = tmp_path / "floats.tif", tmp_path / "nocrs.tif"
    profile = {"driver": "GTiff", "count": 1, "width": 8, "height": 8, "transform": rasterio.Affine(30, 0, 0, 0, -30, 0)}
    with rasterio.open(floats, "w", dtype="float32", crs="EPSG:32119", **profile) as dst:
        dst.write(np.ones((1, 8, 8), np.float32))
    with rasterio.open(no_crs, "w", dtype="uint8", **profile) as dst:
        dst.write(np.ones((1, 8, 8), np.uint8))
    cases = [
        ((STRATA, "--output", tmp_path / "a.shp"), "cannot write '.shp' vectors; the installed drivers write .gpkg"),
        ((STRATA, "--output", tmp_path / "a.gpkg", "--min-area", -1), "--min-area must be >= 0"),
        ((floats, "--output", tmp_path / "a.gpkg"), "is not a class map: expected one band of whole numbers"),
        ((no_crs, "--output", tmp_path / "a.gpkg"), "has no CRS"),
        ((tmp_path / "missing.tif", "--output", tmp_path / "a.gpkg"), "does not exist"),
        ((STRATA, "--output", tmp_path / "no" / "a.gpkg"), "does not exist"),
    ]
    for args, message in cases:
        code, out, err = cli(capsys, *args)
        assert (code, out) == (1, "") and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["floats.tif", "nocrs.tif"]


def test_overwrite_replaces_only_our_own_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "map.geojson"
    assert cli(capsys, STRATA, "--output", out)[0] == 0
    code, _, err = cli(capsys, STRATA, "--output", out)
    assert code == 1 and "exists; pass --overwrite" in err
    assert cli(capsys, STRATA, "--output", out, "--overwrite", "--min-area", 1e6)[0] == 0
    assert len(features(out)) < 100
    theirs = tmp_path / "theirs.geojson"
    theirs.write_text('{"type": "FeatureCollection", "features": []}')
    code, _, err = cli(capsys, STRATA, "--output", theirs, "--overwrite")
    assert code == 1 and "--overwrite refused" in err
    assert theirs.read_text() == '{"type": "FeatureCollection", "features": []}'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_leaves_no_temporary_file(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises((PredictError, OSError)):
            vectorize_file(STRATA, folder / "map.gpkg")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def write_map(path: Path, values: np.ndarray) -> Path:
    """``values`` as a uint8 GeoTIFF (nodata 255) of 1 m pixels whose map coordinates are (column, height - row)."""
    height, width = values.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="uint8", nodata=255,
                       crs="EPSG:32119", transform=rasterio.Affine(1, 0, 0, 0, -1, height)) as dst:
        dst.write(values, 1)
    return path


def pixel_unions(values: np.ndarray) -> list[tuple[int, int, bytes]]:
    """(class, pixels, normalised WKB) of every region as GEOS has it: the union of its pixels' squares."""
    height = values.shape[0]
    found = []
    for value in np.unique(values):
        if value == 255:
            continue
        labelled, _ = ndimage.label(values == value)
        for k, window in enumerate(ndimage.find_objects(labelled), start=1):
            rows, cols = np.nonzero(labelled[window] == k)
            rows, cols = rows + window[0].start, cols + window[1].start
            squares = shapely.box(cols, height - rows - 1, cols + 1, height - rows)
            union = shapely.simplify(shapely.normalize(shapely.union_all(squares)), 0.0)  # seams' vertices gone
            found.append((int(value), len(rows), shapely.normalize(union).wkb))
    return sorted(found)


def serpentine(height: int = 300, width: int = 260, seed: int = 0) -> np.ndarray:
    """Salt and pepper of classes 0-2 (nodata specks) with one class-5 region snaking through every row of the map:
    bars joined at alternate ends, a loop that touches itself across a corner, holes of other classes."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 3, (height, width)).astype(np.uint8)
    values[rng.random((height, width)) < 0.05] = 255
    for i, y in enumerate(range(2, height - 3, 9)):
        values[y : y + 3, 4 : width - 4] = 5
        x = width - 7 if i % 2 == 0 else 4
        values[y : min(y + 12, height - 1), x : x + 3] = 5
        values[y + 1, 10 + (7 * i) % (width - 30)] = 1  # a hole in the bar
    y, x = height // 2, width // 2  # a square loop joined to a bar below, touching itself across a corner
    values[y : y + 6, x : x + 6] = 5
    values[y + 1 : y + 5, x + 1 : x + 5] = 0
    values[y + 6 : y + 9, x + 3] = 5
    values[y, x] = 0  # the corner: its walls meet across it only, around the hole
    return values


def test_regions_spanning_many_block_rows_are_whole_and_the_same_for_every_block_size(tmp_path: Path) -> None:
    values = serpentine()
    source = write_map(tmp_path / "map.tif", values)
    found = {}
    for block in (64, 128, 512, 37):  # 512: the whole map in one block
        result = vectorize_file(source, tmp_path / f"b{block}.gpkg", block_size=block)
        found[block] = features(result.output)
        assert result.features == len(found[block])
    assert found[64] == found[128] == found[512] == found[37]
    assert found[64] == pixel_unions(values)  # each region exactly the union of its pixels, as GEOS makes it
    spanning = max(found[64], key=lambda f: f[1])
    bottom, top = shapely.from_wkb(spanning[2]).bounds[1::2]
    assert spanning[0] == 5 and bottom <= 3 and top >= 297  # through every block row
    assert all(shapely.from_wkb(w).is_valid for *_, w in found[64])


@pytest.mark.parametrize("chunk", [None, 7])
def test_salt_and_pepper_regions_touching_across_corners_are_valid_and_exact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int | None) -> None:
    if chunk:  # WKB written a few vertices at a time: rings cut anywhere between the pieces
        from registry_gfm.predict import _regions

        monkeypatch.setattr(_regions, "_WKB_CHUNK", chunk)
    rng = np.random.default_rng(3)
    values = rng.choice(np.array([0, 1, 2, 255], np.uint8), size=(50, 61), p=[0.4, 0.3, 0.25, 0.05])
    source = write_map(tmp_path / "noise.tif", values)
    found = {block: features(vectorize_file(source, tmp_path / f"b{block}.fgb", block_size=block).output)
             for block in (5, 16, 64)}
    assert found[5] == found[16] == found[64] == pixel_unions(values)
    polygons = [shapely.from_wkb(w) for *_, w in found[5]]
    assert all(g.is_valid for g in polygons) and any(g.interiors for g in polygons)


def test_mean_probability_is_exact_for_a_region_across_every_block(tmp_path: Path) -> None:
    from affine import Affine

    from registry_gfm.predict._vectors import ClassGrid, VectorOptions, write_vectors

    values = serpentine(120, 100, seed=1)
    probability = np.random.default_rng(2).uniform(0.2, 1.0, values.shape).astype(np.float32)

    def read(x0: int, y0: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        return values[y0 : y0 + h, x0 : x0 + w], probability[y0 : y0 + h, x0 : x0 + w]

    grid = ClassGrid(read, *values.shape, "EPSG:32119", Affine(1, 0, 0, 0, -1, values.shape[0]), 255, None,
                     scored=True)
    found = {}
    for block in (7, 32, 128):
        out = tmp_path / f"b{block}.gpkg"
        write_vectors(grid, out, "GPKG", VectorOptions(block_size=block))
        with fiona.open(out) as src:
            found[block] = sorted((f["properties"]["class"], f["properties"]["pixels"],
                                   f["properties"]["probability"]) for f in src)
    assert found[7] == found[32] == found[128]
    labelled, _ = ndimage.label(values == 5)
    biggest = np.bincount(labelled.ravel())[1:].argmax() + 1
    spanning = max(found[7], key=lambda f: f[1] if f[0] == 5 else 0)
    assert spanning[2] == pytest.approx(float(probability[labelled == biggest].astype(np.float64).mean()), abs=1e-6)


def test_what_is_held_between_block_rows_follows_the_open_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tall map of small regions: the union-find and the boundary walks held after each block row stay as small at
    the bottom as near the top (they were once kept for every label of the scene)."""
    from registry_gfm.predict import _regions

    values = np.random.default_rng(4).integers(0, 4, (2048, 48)).astype(np.uint8)
    held: list[tuple[int, int]] = []
    settle = _regions._settle

    def spy(uf: Any, info: Any, pending: Any, reachable: Any, shaping: Any) -> Any:
        out = settle(uf, info, pending, reachable, shaping)
        held.append((len(uf.parent) + len(info), sum(len(w.coords) for w in pending)))
        return out

    monkeypatch.setattr(_regions, "_settle", spy)

    def read(x0: int, y0: int, w: int, h: int) -> tuple[np.ndarray, None]:
        return values[y0 : y0 + h, x0 : x0 + w], None

    regions = sum(len(batch[0]) for batch in _regions.regions(read, 2048, 48, 16, None))
    assert regions == sum(ndimage.label(values == v)[1] for v in range(4))
    first, last = np.array(held[:32]).max(axis=0), np.array(held[-32:]).max(axis=0)
    assert (last <= 2 * first).all() and len(held) == 128


def spawned(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Every map written by the child process (``PIPED_PIXELS`` 0); the processes started, to look at after."""
    from registry_gfm.predict import _vectors

    monkeypatch.setattr(_vectors, "PIPED_PIXELS", 0)
    started: list[subprocess.Popen[bytes]] = []
    popen = subprocess.Popen

    def spy(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append(popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", spy)
    return started


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet", ".fgb", ".geojson"])
def test_a_map_written_by_the_child_process_holds_the_same_features(tmp_path: Path, suffix: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    here = vectorize_file(STRATA, tmp_path / f"here{suffix}", block_size=97)
    started = spawned(monkeypatch)
    piped = vectorize_file(STRATA, tmp_path / f"piped{suffix}", block_size=97)
    assert len(started) == 1 and started[0].args[-1].endswith("_vector_writer.py")
    assert piped.features == here.features > 1000
    assert features(piped.output) == features(here.output)
    if suffix != ".parquet":
        with fiona.open(piped.output) as src:
            assert src.crs.to_epsg() == 3358
    assert vector_kind(piped.output) == "predict"  # our marker: --overwrite may replace it
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


@pytest.mark.parametrize("piped", [False, True], ids=["in-process", "child-process"])
def test_a_full_disk_is_one_error_and_leaves_nothing(tmp_path: Path, piped: bool,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if piped:
        spawned(monkeypatch)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, limit[1]))  # files stop growing at 256 KiB: a full disk
    try:
        with pytest.raises(PredictError, match=r"--output .*map\.gpkg: could not write it: .+"):
            vectorize_file(STRATA, tmp_path / "map.gpkg", block_size=97)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_stops_the_child_process_and_leaves_nothing(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_gfm.predict import _vectors

    started = spawned(monkeypatch)
    real = _vectors.regions

    def interrupted(*args: Any, **kwargs: Any) -> Iterator[Any]:
        batches = real(*args, **kwargs)
        yield next(batches)
        yield next(batches)
        raise KeyboardInterrupt

    monkeypatch.setattr(_vectors, "regions", interrupted)
    with pytest.raises(KeyboardInterrupt):
        vectorize_file(STRATA, tmp_path / "map.gpkg", block_size=64)
    assert len(started) == 1 and started[0].poll() is not None
    assert list(tmp_path.iterdir()) == []


def test_rectangles_skip_the_walk_and_come_out_as_traced(monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_gfm.predict import _regions

    rng = np.random.default_rng(3)
    values = rng.integers(0, 4, (150, 130)).astype(np.uint8)
    values[rng.random(values.shape) < 0.05] = 255
    values[10:30, 20:50] = 7  # a large rectangle inside a block, one across blocks
    values[60:70, 28:40] = 6
    scores = rng.random(values.shape).astype(np.float32)

    def read(x0: int, y0: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        return values[y0 : y0 + h, x0 : x0 + w], scores[y0 : y0 + h, x0 : x0 + w]

    def polygons() -> list[tuple[int, int, float, bytes]]:
        return [row for v, p, m, g in _regions.regions(read, 150, 130, 32, 255, rasterio.Affine(30, 0, 5e5, 0, -30, 4e6))
                for row in zip(v.tolist(), p.tolist(), m.tolist(), g.to_pylist(), strict=True)]

    boxes = 0
    shortcut = _regions._rectangles

    def counted(*args: Any) -> Any:
        nonlocal boxes
        box, corners = shortcut(*args)
        boxes += int(box.sum())
        return box, corners

    monkeypatch.setattr(_regions, "_rectangles", counted)
    fast = polygons()
    assert boxes > len(fast) // 2  # most regions of a noisy map are rectangles (single pixels, pairs)
    monkeypatch.setattr(_regions, "_rectangles", lambda padded, local, pixels, edge: (np.zeros(len(pixels), bool), None))
    assert polygons() == fast  # the same features, bytes and order, as when every region is walked
