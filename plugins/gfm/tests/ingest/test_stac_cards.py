"""The STAC dataset cards against real servers on loopback: ``rustac serve`` with items laid out as Earth Search and
NASA CMR-STAC serve them (asset keys, ``eo:bands``, ``raster:bands``, ``proj:`` per asset, ``s2:`` fields,
``updated``), their COGs served over HTTP with range requests, the card's URL overridden to the loopback one.

Pixels come from the real Landsat 7 crop in tests/data/gfm_lsat7, laid out as a Sentinel-2 tile would hold them
(10 m and 20 m bands, DN + 1000 since processing baseline 04.00, an SCL cloud block) and as HLS does (30 m, int16).
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.transform import Affine, rowcol

from registry_core import get_registry
from registry_core.testing import one_error_line, run_cli
from registry_gfm.ingest.access import AccessError, sign_items

from ..conftest import AssetSpec, lsat7_crop, make_item, serve_files, serve_stac, served_features, write_cog

EPSG = 32617
ORIGIN = (600000.0, 4200000.0)
S2_BANDS = {  # Earth Search asset key -> (band id, common name, wavelength, resolution, Landsat 7 band it is cut from)
    "blue": ("B02", "blue", 0.49, 10, "B1"), "green": ("B03", "green", 0.56, 10, "B2"),
    "red": ("B04", "red", 0.665, 10, "B3"), "nir08": ("B8A", "nir08", 0.865, 20, "B4"),
    "swir16": ("B11", "swir16", 1.61, 20, "B5"), "swir22": ("B12", "swir22", 2.19, 20, "B7"),
}
DATES = ("2024-06-05T10:30:00", "2024-06-15T10:30:00")
CLOUD = (slice(10, 20), slice(5, 30))  # an SCL cloud block (20 m pixels) in the first scene
BBOX = [-79.8605, 37.9315, -79.8488, 37.941]  # inside the two scenes (1.28 km square); the third lies far west


@dataclass
class Served:
    root: Path
    files: str
    api: str
    items: list[pystac.Item]


def _s2_items(root: Path) -> list[pystac.Item]:
    crop, _, _ = lsat7_crop()
    items = []
    for t, when in enumerate(DATES):
        assets: dict[str, AssetSpec] = {}
        proj: dict[str, tuple[list[float], list[int]]] = {}
        for key, (bid, common, wl, res, src) in S2_BANDS.items():
            n = 1280 // res
            data = (crop[src][:n, :n].astype(np.uint16) * 37 + 1000 + 11 * t).astype(np.uint16)
            transform = Affine(float(res), 0.0, ORIGIN[0], 0.0, -float(res), ORIGIN[1])
            path = root / "s2" / f"{t}_{bid}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_cog(path, data, transform, EPSG, 0)
            assets[key] = AssetSpec(path, "uint16", 0, common, wl, {"scale": 0.0001, "offset": -0.1,
                                                                     "spatial_resolution": res, "bits_per_sample": 15})
            proj[key] = (list(transform)[:6], [n, n])
        scl = np.full((64, 64), 4, dtype=np.uint8)  # vegetation
        if t == 0:
            scl[CLOUD] = 9  # cloud, high probability
        transform = Affine(20.0, 0.0, ORIGIN[0], 0.0, -20.0, ORIGIN[1])
        write_cog(root / "s2" / f"{t}_SCL.tif", scl, transform, EPSG, 0)
        assets["scl"] = AssetSpec(root / "s2" / f"{t}_SCL.tif", "uint8", 0, roles=("data",))
        proj["scl"] = (list(transform)[:6], [64, 64])
        # The JPEG 2000 twin Earth Search lists beside each COG: same band, never to be picked over the COG.
        assets["red-jp2"] = AssetSpec(root / "s2" / "missing.jp2", "uint16", 0, "red", 0.665)
        item = make_item(f"S2A_17SLA_2024060{t}_0_L2A", when, assets, EPSG, Affine(10.0, 0.0, ORIGIN[0], 0.0, -10.0,
                         ORIGIN[1]), (128, 128),
                         {"s2:processing_baseline": "05.10", "eo:cloud_cover": 12.5 * t, "platform": "sentinel-2a",
                          "constellation": "sentinel-2", "mgrs:utm_zone": 17, "mgrs:latitude_band": "S",
                          "mgrs:grid_square": "LA", "grid:code": "MGRS-17SLA", "proj:epsg": EPSG,
                          "updated": f"2024-06-2{t}T00:00:00Z", "created": f"2024-06-2{t}T00:00:00Z"})
        for key, (transform_list, shape) in proj.items():
            item.assets[key].extra_fields.update({"proj:transform": transform_list, "proj:shape": shape})
        item.assets["red-jp2"].media_type = "image/jp2"
        items.append(item)
    far = items[0].clone()  # the same tile id elsewhere: outside the bbox
    far.id = "S2A_10SEG_20240610_0_L2A"
    far.bbox = [-122.5, 37.0, -122.0, 37.5]
    far.geometry = {"type": "Polygon", "coordinates": [[[-122.5, 37.0], [-122.0, 37.0], [-122.0, 37.5], [-122.5, 37.5],
                                                        [-122.5, 37.0]]]}
    return [*items, far]


@pytest.fixture(scope="module")
def earth_search(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """An Earth-Search-like API on loopback: collection sentinel-2-l2a, three items, COGs over HTTP."""
    root = tmp_path_factory.mktemp("earth-search")
    items = _s2_items(root)
    with serve_files(root) as files, serve_stac(root, {"sentinel-2-l2a": served_features(items, "sentinel-2-l2a",
                                                                                         root, files)}) as api:
        yield Served(root, files, api, items)


def _ingest_toml(folder: Path, api: str, card: str = "earth-search-s2-l2a", extra: str = "") -> Path:
    path = folder / "ingest.toml"
    path.write_text(f'[data]\nuse = "{card}"\ncatalog = "{api}"\nbbox = {BBOX}\ndatetime = "2024-06-01/2024-06-30"\n'
                    f'store = "cube.zarr"\nscheduler = "synchronous"\n{extra}\n')
    return path


def _at(path: Path, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The served COG's pixels at map coordinates (xs, ys)."""
    with rasterio.open(path) as src:
        rows, cols = rowcol(src.transform, xs.ravel(), ys.ravel())
        return np.asarray(src.read(1))[np.asarray(rows), np.asarray(cols)].reshape(xs.shape)


@pytest.mark.parametrize("resolution", [10, 20])
def test_an_ingest_through_the_sentinel2_card_holds_the_served_pixels(earth_search: Served, tmp_path: Path,
                                                                      resolution: int) -> None:
    import xarray as xr

    extra = f"resolution = {resolution}" if resolution != 20 else ""  # 20 m: the card's own
    out = run_cli("ingest", str(_ingest_toml(tmp_path, earth_search.api, extra=extra)), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    cube = xr.open_zarr(tmp_path / "cube.zarr")
    assert [str(b) for b in cube["band"].values] == list(S2_BANDS)
    assert [str(i) for i in cube["item_id"].values] == [f"S2A_17SLA_2024060{t}_0_L2A" for t in range(2)]
    assert float(cube["x"][1] - cube["x"][0]) == resolution
    xs, ys = np.meshgrid(cube["x"].values, cube["y"].values)
    for t in range(2):
        for b, (key, (bid, *_rest, res, _src)) in enumerate(S2_BANDS.items()):
            if res > resolution or resolution == res:  # 20 m bands on a 10 m grid: each centre inside one pixel
                want = _at(earth_search.root / "s2" / f"{t}_{bid}.tif", xs, ys)
                got = cube["image"].isel(time=t, band=b).values
                valid = cube["valid"].isel(time=t).values.astype(bool)
                np.testing.assert_array_equal(got[valid], want[valid], err_msg=f"{key} at time {t}")
        scl = _at(earth_search.root / "s2" / f"{t}_SCL.tif", xs, ys)
        np.testing.assert_array_equal(cube["valid"].isel(time=t).values.astype(bool), scl == 4)
    assert (~cube["valid"].isel(time=0).values.astype(bool)).sum() > 0  # the cloud block lies inside the box
    provenance = cube.attrs["provenance"]
    assert [it["updated"] for it in provenance["items"]] == ["2024-06-20T00:00:00Z", "2024-06-21T00:00:00Z"]
    assert provenance["items"][0]["assets"]["red"] == f"{earth_search.files}/s2/0_B04.tif"  # the COG, not the jp2
    assert provenance["search"]["collections"] == ["sentinel-2-l2a"]


def test_pull_of_a_stac_card_lists_what_the_search_finds(earth_search: Served) -> None:
    out = run_cli("pull", "earth-search-s2-l2a", "--bbox", *map(str, BBOX), "--datetime", "2024-06-01/2024-06-30",
                  "--catalog", earth_search.api, "--json")
    assert out.returncode == 0, out.stderr
    (record,) = json.loads(out.stdout)
    assert record["card"] == "gfm:earth-search-s2-l2a" and record["collections"] == ["sentinel-2-l2a"]
    assert [it["id"] for it in record["items"]] == [f"S2A_17SLA_2024060{t}_0_L2A" for t in range(2)]
    assert [it["updated"] for it in record["items"]] == ["2024-06-20T00:00:00Z", "2024-06-21T00:00:00Z"]
    first = record["items"][0]
    assert first["datetime"] == "2024-06-05T10:30:00+00:00"
    assert first["assets"] == {**{k: f"{earth_search.files}/s2/0_{v[0]}.tif" for k, v in S2_BANDS.items()},
                               "scl": f"{earth_search.files}/s2/0_SCL.tif"}
    table = run_cli("pull", "earth-search-s2-l2a", "--bbox", *map(str, BBOX), "--catalog", earth_search.api)
    assert table.returncode == 0 and "2 item(s) of sentinel-2-l2a" in table.stdout, table.stderr


def test_a_rerun_says_which_items_changed_at_the_source(earth_search: Served, tmp_path: Path) -> None:
    path = _ingest_toml(tmp_path, earth_search.api)
    assert run_cli("ingest", str(path), cwd=tmp_path).returncode == 0
    again = run_cli("ingest", str(path), cwd=tmp_path)
    assert again.returncode == 0 and "already complete" in again.stderr, again.stderr
    items = [it.clone() for it in earth_search.items]
    items[1].properties["updated"] = "2024-09-01T00:00:00Z"  # reprocessed upstream
    work = tmp_path / "moved"
    work.mkdir()
    with serve_stac(work, {"sentinel-2-l2a": served_features(items, "sentinel-2-l2a", earth_search.root,
                                                             earth_search.files)}) as moved:
        path = _ingest_toml(tmp_path, moved)
        line = one_error_line(run_cli("ingest", str(path), cwd=tmp_path))
    assert line == ("error: the STAC items of store cube.zarr changed since it was written: item S2A_17SLA_20240601_0_L2A "
                    "updated 2024-06-21T00:00:00Z -> 2024-09-01T00:00:00Z; remove the store (or choose another 'store' "
                    "path) to ingest them again")


BAD = [
    (["pull", "earth-search-s2"], "error: no card named 'earth-search-s2'; did you mean"),
    (["pull", "earth-search-s2-l2a"], "error: gfm:earth-search-s2-l2a is a STAC collection; give the area to search "
                                      "with --bbox WEST SOUTH EAST NORTH (and --datetime START/END)"),
    (["pull", "earth-search-s2-l2a", "--bbox", "0", "0", "1", "1", "--max-items", "0"],
     "error: --max-items must be at least 1, got 0"),
]


@pytest.mark.parametrize(("args", "start"), BAD, ids=["unknown", "no-bbox", "no-items"])
def test_bad_pulls_are_one_line(args: list[str], start: str) -> None:
    out = run_cli(*args)
    assert one_error_line(out, code=out.returncode or 1).startswith(start)


def test_a_search_that_finds_nothing_names_the_area_and_dates(earth_search: Served, tmp_path: Path) -> None:
    path = _ingest_toml(tmp_path, earth_search.api)
    path.write_text(path.read_text().replace("2024-06-01/2024-06-30", "2023-01-01/2023-01-31"))
    line = one_error_line(run_cli("ingest", str(path), cwd=tmp_path))
    assert line.startswith(f"error: STAC search of {earth_search.api} found no items for collections=['sentinel-2-l2a'], "
                           f"bbox={[float(v) for v in BBOX]}, datetime=2023-01-01/2023-01-31")
    assert not (tmp_path / "cube.zarr").exists()


def test_a_collection_the_api_lacks_is_named(earth_search: Served, tmp_path: Path) -> None:
    # The Landsat card against an API that serves Sentinel-2 only.
    path = _ingest_toml(tmp_path, earth_search.api, card="earth-search-landsat-c2-l2")
    line = one_error_line(run_cli("ingest", str(path), cwd=tmp_path, env={"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE"}))
    assert line == (f"error: STAC API {earth_search.api} has no collection 'landsat-c2-l2' (it has: sentinel-2-l2a)")
    assert not (tmp_path / "cube.zarr").exists()


def test_a_card_without_an_area_is_refused_before_searching(tmp_path: Path) -> None:
    path = tmp_path / "ingest.toml"
    path.write_text('[data]\nuse = "earth-search-s2-l2a"\ncatalog = "http://127.0.0.1:9"\nstore = "cube.zarr"\n')
    line = one_error_line(run_cli("ingest", str(path), cwd=tmp_path))
    assert line.endswith("STAC collection sentinel-2-l2a of http://127.0.0.1:9 is too large to search whole: set "
                         "'bbox' = [west, south, east, north] (or 'intersects') and 'datetime' for the area and dates "
                         "to ingest")


@pytest.mark.parametrize(("card", "env", "needs"), [
    ("hls-l30", {}, "needs a NASA Earthdata login: set EARTHDATA_TOKEN"),
    ("earth-search-landsat-c2-l2", {}, "is in a requester-pays bucket: set AWS credentials"),
])
def test_missing_credentials_are_one_line_before_any_request(card: str, env: dict[str, str], needs: str,
                                                               tmp_path: Path) -> None:
    path = _ingest_toml(tmp_path, "http://127.0.0.1:9", card=card)  # nothing listens there: no request is made
    clean = {"HOME": str(tmp_path), "EARTHDATA_TOKEN": "", "AWS_ACCESS_KEY_ID": "", "AWS_PROFILE": "",
             "NETRC": str(tmp_path / "no-netrc"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    line = one_error_line(run_cli("ingest", str(path), cwd=tmp_path, env={**clean, **env}))
    assert needs in line, line
    assert not (tmp_path / "cube.zarr").exists()


# -- HLS through CMR-STAC: int16 COGs behind a login (a bearer token), no proj metadata in the items ---------------------

TOKEN = "edl-token-for-tests"


@pytest.fixture(scope="module")
def cmr_stac(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from ..conftest import _RangeHandler

    class Protected(_RangeHandler):
        def send_head(self) -> Any:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_error(401, "Earthdata login required")
                return None
            return super().send_head()

    root = tmp_path_factory.mktemp("cmr-stac")
    crop, _, _ = lsat7_crop()
    transform = Affine(30.0, 0.0, ORIGIN[0], 0.0, -30.0, ORIGIN[1])
    assets = {}
    for key, src in zip(("B02", "B03", "B04", "B05", "B06", "B07"), ("B1", "B2", "B3", "B4", "B5", "B7"), strict=True):
        path = root / "hls" / f"HLS.L30.T17SLA.2024157T155000.v2.0.{key}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_cog(path, (crop[src][:96, :96].astype(np.int16) * 30 - 200), transform, EPSG, -9999)
        assets[key] = AssetSpec(path, "int16", -9999)
    fmask = np.zeros((96, 96), dtype=np.uint8)
    fmask[:8] = 1 << 1  # cloud
    write_cog(root / "hls" / "fmask.tif", fmask, transform, EPSG, 255)
    assets["Fmask"] = AssetSpec(root / "hls" / "fmask.tif", "uint8", 255)
    item = make_item("HLS.L30.T17SLA.2024157T155000.v2.0", "2024-06-05T15:50:00", assets, EPSG, transform, (96, 96))
    for asset in item.assets.values():  # CMR-STAC items carry neither proj nor band metadata: headers tell
        asset.extra_fields.clear()
    for key in [k for k in item.properties if k.startswith("proj:")]:
        del item.properties[key]
    item.stac_extensions = []
    with serve_files(root, Protected) as files, serve_stac(root, {"HLSL30_2.0": served_features([item], "HLSL30_2.0",
                                                                                               root, files)}) as api:
        yield Served(root, files, api, [item])


def test_an_hls_ingest_sends_the_earthdata_token_and_reads_headers_for_the_grid(cmr_stac: Served,
                                                                                tmp_path: Path) -> None:
    import xarray as xr

    path = _ingest_toml(tmp_path, cmr_stac.api, card="hls-l30")
    out = run_cli("ingest", str(path), cwd=tmp_path, env={"EARTHDATA_TOKEN": TOKEN})
    assert out.returncode == 0, out.stderr
    cube = xr.open_zarr(tmp_path / "cube.zarr")
    xs, ys = np.meshgrid(cube["x"].values, cube["y"].values)
    want = _at(cmr_stac.root / "hls" / "HLS.L30.T17SLA.2024157T155000.v2.0.B04.tif", xs, ys)
    valid = cube["valid"].isel(time=0).values.astype(bool)
    np.testing.assert_array_equal(cube["image"].isel(time=0, band=2).values[valid], want[valid])
    fmask = _at(cmr_stac.root / "hls" / "fmask.tif", xs, ys)
    np.testing.assert_array_equal(valid, fmask == 0)
    assert (~valid).sum() > 0 and float(cube["x"][1] - cube["x"][0]) == 30


def test_a_wrong_earthdata_token_fails_naming_the_asset(cmr_stac: Served, tmp_path: Path) -> None:
    path = _ingest_toml(tmp_path, cmr_stac.api, card="hls-l30")
    line = one_error_line(run_cli("ingest", str(path), cwd=tmp_path, env={"EARTHDATA_TOKEN": "expired"}))
    assert f"cannot open asset {cmr_stac.files}/hls/HLS.L30.T17SLA.2024157T155000.v2.0.B02.tif" in line, line
    assert not (tmp_path / "cube.zarr").exists()


# -- Planetary Computer: links signed with SAS tokens from its token service (here on loopback) ----------------------


@pytest.fixture
def sas_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """planetary-computer's token endpoint on loopback (PC_SDK_SAS_URL); yields the paths it was asked for."""
    import threading

    import planetary_computer.sas

    asked: list[str] = []

    class Tokens(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps({"msft:expiry": "2099-01-01T00:00:00Z", "token": "st=2024&se=2099&sp=rl&sig=abc"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tokens)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PC_SDK_SAS_URL", f"http://127.0.0.1:{server.server_address[1]}/api/sas/v1/token")
    monkeypatch.setattr(planetary_computer.sas, "TOKEN_CACHE", {})
    planetary_computer.settings.Settings.get.cache_clear()
    yield asked
    server.shutdown()
    server.server_close()
    planetary_computer.settings.Settings.get.cache_clear()


def _pc_item() -> pystac.Item:
    item = pystac.Item("S2B_MSIL2A_20240605T155819_R097_T17SLA", {"type": "Point", "coordinates": [-77, 38]},
                       [-77, 38, -77, 38], dt.datetime(2024, 6, 5, 15, 58, 19, tzinfo=dt.UTC), {})
    for key in ("B04", "SCL"):
        item.add_asset(key, pystac.Asset(f"https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/17/S/LA/{key}.tif"))
    return item


def test_planetary_computer_links_are_signed_for_reading_only(sas_service: list[str]) -> None:
    item = _pc_item()
    (signed,) = sign_items([item], "planetary-computer", "the PC card")
    assert signed.assets["B04"].href.endswith("/B04.tif?st=2024&se=2099&sp=rl&sig=abc")
    assert item.assets["B04"].href.endswith("/B04.tif")  # what the datacube records stays unsigned
    assert sas_service == ["/api/sas/v1/token/sentinel2l2a01/sentinel2-l2"]  # one token per container, cached


def test_a_token_service_that_fails_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import planetary_computer.sas

    from ..conftest import free_port

    monkeypatch.setenv("PC_SDK_SAS_URL", f"http://127.0.0.1:{free_port()}/token")
    monkeypatch.setattr(planetary_computer.sas, "TOKEN_CACHE", {})
    planetary_computer.settings.Settings.get.cache_clear()
    try:
        with pytest.raises(AccessError, match=r"^the PC card: signing asset links with planetary-computer failed: "
                                              r"ConnectionError"):
            sign_items([_pc_item()], "planetary-computer", "the PC card", retries=0)
    finally:
        planetary_computer.settings.Settings.get.cache_clear()


def test_the_cards_bands_come_from_the_band_catalog() -> None:
    from registry_core import StacCard
    from registry_gfm.bands import get_sensor, same_band_order

    reg = get_registry()
    cards = {s.name: s for s in reg.list(kind="data_source") if isinstance(s.card, StacCard)}
    assert set(cards) == {"earth-search-s2-l2a", "earth-search-landsat-c2-l2", "planetary-computer-s2-l2a",
                          "planetary-computer-landsat-c2-l2", "hls-l30", "hls-s30"}
    prithvi = ["blue", "green", "red", "nir08", "swir16", "swir22"]  # what the Prithvi-EO cards take
    for name, spec in cards.items():
        card = spec.card
        assert isinstance(card, StacCard)
        sensor = "sentinel-2-l2a" if "s2-l2a" in name else "landsat-8-9-c2-l2" if "landsat" in name else name
        common = [get_sensor(sensor).band(key).common_name for key in card.options["assets"]]
        assert same_band_order(common, prithvi), (name, common)
        assert card.options["area_required"] is True


# -- the recipe: examples/s2-earth-search.toml ingests (here from the loopback API), mae-s2 pretrains on it -------------

ROOT = Path(__file__).resolve().parents[4]


def test_the_mae_s2_recipe_is_its_example_file() -> None:
    from registry_core import Pipeline, compose

    assert Pipeline.from_toml(ROOT / "examples" / "mae-s2.toml") == compose({"recipe": "mae-s2"})


def test_the_s2_example_ingests_and_mae_s2_learns_on_it(earth_search: Served, tmp_path: Path) -> None:
    here = ["--set", f"data.catalog={earth_search.api}", "--set", f"data.bbox={BBOX}",
            "--set", "data.datetime=2024-06-01/2024-06-30", "--set", "data.store=cube.zarr"]
    out = run_cli("ingest", str(ROOT / "examples" / "s2-earth-search.toml"), *here, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    short = ["--set", "data.store=cube.zarr", "--set", "data.chip_size=16", "--set", "data.samples_per_epoch=64", "--set", "train.batch_size=8",
             "--set", "train.eval_every=4", "--set", "train.log_every=2", "--set", "train.checkpoint_every=0",
             "--set", "train.warmup_steps=1", "--steps", "8"]
    run = run_cli("run", str(ROOT / "examples" / "mae-s2.toml"), "--out", "run", *short, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0], losses
    from registry_core.pipeline._persist import LOCK_FILE

    lock = json.loads((tmp_path / "run" / LOCK_FILE).read_text())
    assert lock["data"]["stac"] == {  # the run says which items of which collection it trained on, and their versions
        "catalog": earth_search.api, "collections": ["sentinel-2-l2a"],
        "items": [{"id": f"S2A_17SLA_2024060{t}_0_L2A", "updated": f"2024-06-2{t}T00:00:00Z"} for t in range(2)]}


def test_list_and_show_read_a_stac_card_without_network_or_heavy_imports() -> None:
    from registry_core.testing import heavy_imports

    listed = run_cli("list", "data_source", "--tag", "dataset")
    assert listed.returncode == 0, listed.stderr
    assert "https://earth-search.aws.element84.com/v1 sentinel-2-l2a" in listed.stdout and "tinystories" in listed.stdout
    shown = run_cli("show", "data_source", "hls-s30")
    assert shown.returncode == 0, shown.stderr
    for line in ("card:        collection HLSS30_2.0 of the STAC API https://cmr.earthdata.nasa.gov/stac/LPCLOUD",
                 "licence:        NASA EOSDIS open data", "credentials:    NASA Earthdata login",
                 "bands:          B02: B02 (blue, 0.49 um, 30 m); B03: B03 (green", "cloud mask:     asset Fmask",
                 "source:         https://lpdaac.usgs.gov/products/hlss30v002/"):
        assert line in shown.stdout, shown.stdout
    assert heavy_imports(["registry_gfm.ingest.cards"]) == []
