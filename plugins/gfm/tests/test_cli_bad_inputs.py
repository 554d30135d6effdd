"""Bad stac-zarr ingests and predict runs through the real CLI: one ``error:`` line naming the option, file or
band, exit 1, no traceback, and no store written. Uses the Landsat 7 catalog shipped in tests/data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry_core.testing import one_error_line, run_cli

CATALOG = Path(__file__).resolve().parents[3] / "tests" / "data" / "gfm_lsat7" / "stac" / "catalog.json"


cli = run_cli
one_error = one_error_line


def ingest_file(folder: Path, extra: str = "", catalog: str = str(CATALOG), assets: str = '"blue", "red"',
                store: str = "cube.zarr") -> Path:
    path = folder / "ingest.toml"
    path.write_text(f'[data]\nuse = "stac-zarr"\ncatalog = "{catalog}"\ncollections = ["landsat7-crop"]\n'
                    f'assets = [{assets}]\nstore = "{store}"\n{extra}\n')
    return path


LATLON = "expected lon/lat degrees"
OPTIONS = [
    ("bbox = [0, 95, 1, 96]", "[data.bbox] option 'bbox' has latitude 95.0, outside [-90, 90]; " + LATLON),
    ("bbox = [-200, 0, 1, 1]", "[data.bbox] option 'bbox' has longitude -200.0, outside [-180, 180]; " + LATLON),
    ("bbox = [1, 1, 0, 2]", "[data.bbox] option 'bbox' [1.0, 1.0, 0.0, 2.0] is empty or inverted; expected [west, south, "
                            "east, north] with west < east and south < north (boxes across the antimeridian are not "
                            "supported)"),
    ("bbox = [0, 1, 2]", "[data.bbox] option 'bbox' needs 4 numbers [west, south, east, north], got [0.0, 1.0, 2.0]"),
    ('intersects = { type = "Polygon", coordinates = [[[0, 0], [1, 91], [1, 0], [0, 0]]] }',
     "[data.intersects] option 'intersects' has latitude 91.0, outside [-90, 90]; " + LATLON),
    ('intersects = { kind = "Polygon" }', "[data.intersects] option 'intersects' is not a GeoJSON geometry; expected "
     "a table with 'type' (one of Point, MultiPoint, LineString, MultiLineString, Polygon, MultiPolygon) and "
     "'coordinates', got {'kind': 'Polygon'}"),
    ('bbox = [0, 0, 1, 1]\nintersects = { type = "Point", coordinates = [0, 0] }',
     "[data.bbox] options 'bbox' and 'intersects' exclude each other; give one area to search"),
    ('datetime = "last tuesday"', "[data.datetime] option 'datetime' 'last tuesday' is not an RFC 3339 instant or "
     "interval; expected e.g. '2020-06-01', '2020-01-01T10:00:00Z' or '2020-01-01/2020-12-31' ('..' for an open end)"),
    ('datetime = "2021-01-01/2020-01-01"',
     "[data.datetime] option 'datetime' '2021-01-01/2020-01-01' starts after it ends; expected 'start/end'"),
    ('crs = "UTM17"', "[data.crs] option 'crs' 'UTM17' is not an EPSG code; expected e.g. 'EPSG:32633'"),
]


@pytest.mark.parametrize(("extra", "message"), OPTIONS, ids=[m.split("]")[0][1:] + str(i) for i, (_, m) in
                                                            enumerate(OPTIONS)])
def test_search_options_are_config_errors(tmp_path: Path, extra: str, message: str) -> None:
    path = ingest_file(tmp_path, extra)
    assert one_error(cli("ingest", str(path), cwd=tmp_path)) == f"error: {path}: {message}"
    assert not (tmp_path / "cube.zarr").exists()


def test_a_search_option_error_as_json(tmp_path: Path) -> None:
    path = ingest_file(tmp_path, "bbox = [0, 95, 1, 96]")
    out = cli("ingest", str(path), "--json", cwd=tmp_path)
    assert (out.returncode, out.stderr) == (1, "")
    record = json.loads(out.stdout)
    assert (record["slot"], record["key"], record["type"]) == ("data", "bbox", "ConfigError")


def test_what_an_ingest_reads_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "catalog.json"
    assert one_error(cli("ingest", str(ingest_file(tmp_path, catalog=str(missing))), cwd=tmp_path)) == \
        f"error: STAC catalog {missing} does not exist (expected a catalog.json path or a STAC API URL)"
    assert one_error(cli("ingest", str(ingest_file(tmp_path, assets='"B99"')), cwd=tmp_path)) == \
        "error: STAC item 'lsat7-2000-crop' has no asset for band 'B99' (by key, eo:bands name or common name); its " \
        "assets are B1, B2, B3, B4, B5, B7"
    (tmp_path / "taken").write_text("keep me")
    assert one_error(cli("ingest", str(ingest_file(tmp_path, store="taken/cube.zarr")), cwd=tmp_path)) == \
        "error: store taken/cube.zarr cannot be created: taken is a file, not a folder"
    assert (tmp_path / "taken").read_text() == "keep me"
    assert not (tmp_path / "cube.zarr").exists()


@pytest.mark.slow
def test_ingest_json_prints_only_the_summary(tmp_path: Path) -> None:
    out = cli("ingest", str(ingest_file(tmp_path)), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"data": "gfm:stac-zarr", "out": "cube.zarr"}
    assert (tmp_path / "cube.zarr").is_dir()


def test_predict_errors_take_json(tmp_path: Path) -> None:
    (tmp_path / "x.tif").write_bytes(b"")
    out = cli("predict", str(tmp_path / "no-run"), "--input", "x.tif", "--output", "y.tif", "--json", cwd=tmp_path)
    assert (out.returncode, out.stderr) == (1, "")
    record = json.loads(out.stdout)
    assert record["type"] == "PredictError" and record["error"].startswith(f"run folder {tmp_path / 'no-run'} has no")
    usage = cli("predict", "run", "--input", "x.tif", cwd=tmp_path)  # --output missing: a usage error
    assert usage.returncode == 2 and "the following arguments are required: --output" in usage.stderr
    assert len(usage.stderr.splitlines()) == 1
