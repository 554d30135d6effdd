"""``vectorize``: a class map into polygons, streamed by blocks. On the real Landsat 7 strata map (tests/data): one
polygon per connected region whatever the block size, polygons that rasterize back to the map pixel for pixel, every
format readable with the map's CRS, and bad inputs refused in one line with nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

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
