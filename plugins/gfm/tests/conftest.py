"""Fixtures of the GFM data tests: real COGs, a static STAC catalog, an HTTP file server, a STAC API.

Everything is built once per test session (per xdist worker) under a temporary directory:

- COGs (rasterio, driver COG, 128-pixel tiles) cut from the real Landsat 7 crop in ``tests/data/gfm_lsat7``
  plus a few synthetic rasters for the cases real data cannot show (a Landsat-like UTM grid with
  half-pixel origin, Sentinel-2 processing baselines, mixed CRSs, a truncated file);
- a static ``catalog.json`` (pystac 1.15, so assets carry ``proj:code`` and not ``proj:epsg``);
- ``http_files``: a threaded HTTP server on 127.0.0.1 with byte-range support, serving those files, so
  GDAL reads the COGs over HTTP exactly as from object storage;
- ``stac_api``: ``rustac serve`` on a free port with the same items, their assets pointing at
  ``http_files``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
from pystac.extensions.projection import ProjectionExtension
from rasterio.transform import Affine

DATA = Path(__file__).resolve().parents[3] / "tests" / "data" / "gfm_lsat7"
#: ETM+ band id -> (common name, centre wavelength in micrometres).
LSAT7_BANDS = {"B1": ("blue", 0.485), "B2": ("green", 0.56), "B3": ("red", 0.66), "B4": ("nir", 0.835),
               "B5": ("swir16", 1.65), "B7": ("swir22", 2.22)}
LSAT7_DATES = ("2000-03-01", "2000-04-01", "2000-05-01")
#: Cloudy rectangles (rows, cols) and the QA_PIXEL bit set there, per Landsat date index.
LSAT7_CLOUDS = {1: ((slice(40, 90), slice(50, 120)), 3), 2: ((slice(100, 150), slice(10, 60)), 4)}
RUSTAC = Path(sys.executable).parent / "rustac"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_cog(path: Path, data: np.ndarray, transform: Affine, epsg: int, nodata: float | None) -> None:
    """One-band tiled, deflated Cloud-Optimized GeoTIFF."""
    profile = {"driver": "COG", "dtype": str(data.dtype), "count": 1, "width": data.shape[1], "height": data.shape[0],
               "crs": f"EPSG:{epsg}", "transform": transform, "nodata": nodata, "compress": "deflate",
               "blocksize": 128}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def lsat7_crop() -> tuple[dict[str, np.ndarray], Affine, int]:
    """The shipped Landsat 7 crop: band id -> (192, 192) uint8, its transform and EPSG."""
    arrays = {}
    for band in LSAT7_BANDS:
        with rasterio.open(DATA / f"lsat7_2000_crop_{band}.tif") as src:
            arrays[band] = src.read(1)
            transform, epsg = src.transform, src.crs.to_epsg()
    return arrays, transform, int(epsg)


@dataclass
class AssetSpec:
    path: Path
    dtype: str
    nodata: float | None
    common_name: str | None = None
    wavelength: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    roles: tuple[str, ...] = ("data",)


def make_item(item_id: str, when: str, assets: dict[str, AssetSpec], epsg: int, transform: Affine,
              shape: tuple[int, int], props: dict[str, Any] | None = None) -> pystac.Item:
    """A STAC item with proj (as pystac 1.15 writes it: ``proj:code``), eo:bands and raster:bands."""
    from pyproj import Transformer

    h, w = shape
    left, top = transform.c, transform.f
    right, bottom = left + transform.a * w, top + transform.e * h
    lon0, lat0, lon1, lat1 = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True).transform_bounds(
        left, bottom, right, top)
    geom = {"type": "Polygon", "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]}
    item = pystac.Item(item_id, geom, [lon0, lat0, lon1, lat1],
                       dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC), dict(props or {}))
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = f"EPSG:{epsg}"
    proj.transform = list(transform)[:6]
    proj.shape = [h, w]
    for key, spec in assets.items():
        extra: dict[str, Any] = {"raster:bands": [{"data_type": spec.dtype, "nodata": spec.nodata, **spec.extra}]}
        if spec.common_name:
            extra["eo:bands"] = [{"name": key, "common_name": spec.common_name, "center_wavelength": spec.wavelength}]
        item.add_asset(key, pystac.Asset(str(spec.path), media_type=pystac.MediaType.COG, roles=list(spec.roles),
                                         extra_fields=extra))
    return item


@dataclass
class IngestCatalog:
    """The session's test catalog: its folder, ``catalog.json`` and the items of each collection."""

    root: Path
    catalog_json: Path
    items: dict[str, list[pystac.Item]]
    lsat7: dict[str, np.ndarray]
    lsat7_transform: Affine
    lsat7_epsg: int
    #: Landsat band ids in catalog order, and the cloudy rectangles per date index.
    band_ids: tuple[str, ...] = tuple(LSAT7_BANDS)
    clouds: dict[int, tuple[tuple[slice, slice], int]] = field(default_factory=lambda: dict(LSAT7_CLOUDS))


def _lsat7(root: Path) -> tuple[dict[str, list[pystac.Item]], dict[str, np.ndarray], Affine, int]:
    arrays, transform, epsg = lsat7_crop()
    shape = next(iter(arrays.values())).shape
    cols: dict[str, list[pystac.Item]] = {"lsat7": [], "cloudy": [], "broken": [], "truncated": [], "mixed": []}
    band_paths: dict[int, dict[str, Path]] = {}
    for t, when in enumerate(LSAT7_DATES):
        band_paths[t] = {}
        assets: dict[str, AssetSpec] = {}
        for band, (common, wl) in LSAT7_BANDS.items():
            data = arrays[band].astype(np.int16)
            data = np.where(data == 0, 0, np.clip(data + 3 * t, 1, 255)).astype(np.uint8)  # a little change per date
            path = root / "lsat7" / f"{when}_{band}.tif"
            write_cog(path, data, transform, epsg, 0)
            band_paths[t][band] = path
            assets[band] = AssetSpec(path, "uint8", 0, common, wl)
        qa = np.full(shape, 1 << 6, dtype=np.uint16)  # bit 6: clear
        if t in LSAT7_CLOUDS:
            (rows, cols_), bit = LSAT7_CLOUDS[t]
            qa[rows, cols_] = 1 << bit
        qa_path = root / "lsat7" / f"{when}_qa_pixel.tif"
        write_cog(qa_path, qa, transform, epsg, 1)
        assets["qa_pixel"] = AssetSpec(qa_path, "uint16", 1, roles=("cloud",))
        cover = [0, 10, 7][t]
        cols["lsat7"].append(make_item(f"lsat7-{when}", when, assets, epsg, transform, shape,
                                       {"eo:cloud_cover": cover, "platform": "landsat-7"}))
    # "cloudy": a clear scene and an all-cloud scene (QA bit 3 everywhere).
    base = {b: AssetSpec(band_paths[0][b], "uint8", 0, *LSAT7_BANDS[b]) for b in LSAT7_BANDS}
    overcast = root / "cloudy" / "overcast_qa_pixel.tif"
    overcast.parent.mkdir(parents=True, exist_ok=True)
    write_cog(overcast, np.full(shape, 1 << 3, dtype=np.uint16), transform, epsg, 1)
    clear_qa = root / "lsat7" / f"{LSAT7_DATES[0]}_qa_pixel.tif"
    cols["cloudy"] = [
        make_item("cloudy-clear", "2000-06-01", {**base, "qa_pixel": AssetSpec(clear_qa, "uint16", 1)}, epsg,
                  transform, shape, {"eo:cloud_cover": 0}),
        make_item("cloudy-overcast", "2000-06-02", {**base, "qa_pixel": AssetSpec(overcast, "uint16", 1)}, epsg,
                  transform, shape, {"eo:cloud_cover": 100}),
    ]
    # "broken": an item without the B4 asset.
    cols["broken"] = [make_item("broken-no-b4", "2000-07-01", {b: s for b, s in base.items() if b != "B4"}, epsg,
                                transform, shape)]
    # "truncated": B1 cut to 40 % of its bytes (the header survives, tiles do not).
    cut = root / "truncated" / "truncated_B1.tif"
    cut.parent.mkdir(parents=True, exist_ok=True)
    raw = band_paths[0]["B1"].read_bytes()
    cut.write_bytes(raw[: int(len(raw) * 0.4)])
    cols["truncated"] = [make_item("truncated-b1", "2000-08-01", {**base, "B1": AssetSpec(cut, "uint8", 0, "blue")},
                                   epsg, transform, shape)]
    # "mixed": the same B1 in EPSG:32119 and reprojected to UTM 17N (EPSG:32617).
    from rasterio.warp import calculate_default_transform, reproject

    utm_t, utm_w, utm_h = calculate_default_transform(f"EPSG:{epsg}", "EPSG:32617", shape[1], shape[0],
                                                      *rasterio.transform.array_bounds(shape[0], shape[1], transform),
                                                      resolution=30)
    utm = np.zeros((utm_h, utm_w), dtype=np.uint8)
    reproject(arrays["B1"], utm, src_transform=transform, src_crs=f"EPSG:{epsg}", dst_transform=utm_t,
              dst_crs="EPSG:32617", src_nodata=0, dst_nodata=0)
    utm_path = root / "mixed" / "utm_B1.tif"
    utm_path.parent.mkdir(parents=True, exist_ok=True)
    write_cog(utm_path, utm, utm_t, 32617, 0)
    cols["mixed"] = [
        make_item("mixed-32119", "2000-09-01", {"B1": base["B1"]}, epsg, transform, shape),
        make_item("mixed-32617", "2000-09-02", {"B1": AssetSpec(utm_path, "uint8", 0, "blue", 0.485)}, 32617, utm_t,
                  (utm_h, utm_w)),
    ]
    return cols, arrays, transform, epsg


def _utm(root: Path) -> dict[str, list[pystac.Item]]:
    """Landsat-like grid (30 m, origin on a 15 m offset) and Sentinel-2-like items with SCL and baselines."""
    rng = np.random.default_rng(7)
    out: dict[str, list[pystac.Item]] = {"utm": [], "s2": []}
    (root / "utm").mkdir(parents=True, exist_ok=True)
    for k, (dx, dy) in enumerate([(0, 0), (37, 21)]):  # the second footprint is shifted by whole pixels
        transform = Affine(30.0, 0.0, 600015.0 + 30 * dx, 0.0, -30.0, 3900015.0 - 30 * dy)
        assets = {}
        for band, common in (("SR_B4", "red"), ("SR_B5", "nir08")):
            data = rng.integers(7000, 30000, size=(90, 100), dtype=np.uint16)
            path = root / "utm" / f"utm{k}_{band}.tif"
            write_cog(path, data, transform, 32617, 0)
            assets[band] = AssetSpec(path, "uint16", 0, common, None, {"scale": 2.75e-05, "offset": -0.2})
        out["utm"].append(make_item(f"utm-{k}", f"2021-0{k + 1}-15", assets, 32617, transform, (90, 100)))
    (root / "s2").mkdir(parents=True, exist_ok=True)
    transform = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
    for k, baseline in enumerate(("03.01", "05.09")):
        assets = {}
        for band, common in (("B04", "red"), ("B08", "nir")):
            data = rng.integers(1000, 5000, size=(64, 64), dtype=np.uint16)
            path = root / "s2" / f"s2_{k}_{band}.tif"
            write_cog(path, data, transform, 32617, 0)
            assets[band] = AssetSpec(path, "uint16", 0, common, None, {"scale": 0.0001})
        scl = np.full((64, 64), 4, dtype=np.uint8)  # vegetation
        scl[:16, :] = 9  # cloud, high probability
        scl[16:24, :] = 6  # water: clear by default
        path = root / "s2" / f"s2_{k}_SCL.tif"
        write_cog(path, scl, transform, 32617, 0)
        assets["scl"] = AssetSpec(path, "uint8", 0, roles=("data",))
        out["s2"].append(make_item(f"s2-{k}", f"2022-0{k + 1}-10", assets, 32617, transform, (64, 64),
                                   {"s2:processing_baseline": baseline}))
    return out


def _save_static(root: Path, collections: dict[str, list[pystac.Item]]) -> Path:
    catalog = pystac.Catalog("gfm-ingest-test", "Test catalog of the GFM ingest tests")
    for name, items in collections.items():
        boxes = [i.bbox for i in items if i.bbox]
        bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
        times = sorted(i.datetime for i in items if i.datetime)
        col = pystac.Collection(name, f"{name} test items", pystac.Extent(pystac.SpatialExtent([bbox]),
                                pystac.TemporalExtent([[times[0], times[-1]]])), license="CC0-1.0")
        for item in items:
            col.add_item(item.clone())
        catalog.add_child(col)
    catalog.normalize_hrefs(str(root / "stac"))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "stac" / "catalog.json"


@pytest.fixture(scope="session")
def ingest_catalog(tmp_path_factory: pytest.TempPathFactory) -> IngestCatalog:
    """Every test COG and the static catalog over them (built once per session)."""
    root = tmp_path_factory.mktemp("gfm_stac")
    (root / "lsat7").mkdir()
    cols, arrays, transform, epsg = _lsat7(root)
    cols.update(_utm(root))
    catalog_json = _save_static(root, cols)
    return IngestCatalog(root, catalog_json, cols, arrays, transform, epsg)


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte ranges (``Range: bytes=a-b``), as GDAL's /vsicurl/ asks for."""

    _remaining: int | None = None

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def send_head(self) -> Any:
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start_s, _, end_s = rng.removeprefix("bytes=").partition("-")
        start = int(start_s) if start_s else max(0, size - int(end_s))
        end = min(int(end_s), size - 1) if end_s and start_s else size - 1
        if start >= size:
            self.send_error(416)
            return None
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source: Any, outputfile: Any) -> None:
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0:
            buf = source.read(min(65536, remaining))
            if not buf:
                break
            outputfile.write(buf)
            remaining -= len(buf)
        self._remaining = None


@contextlib.contextmanager
def serve_files(root: Path, handler: type[_RangeHandler] | None = None) -> Iterator[str]:
    """Base URL of an HTTP server (with range requests) over ``root`` while the block runs."""
    base = handler or _RangeHandler

    class Handler(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def http_files(ingest_catalog: IngestCatalog) -> Iterator[str]:
    """Base URL of an HTTP server (with range requests) over the catalog folder."""
    with serve_files(ingest_catalog.root) as url:
        yield url


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"server at {url} did not start in {timeout} s")


@contextlib.contextmanager
def serve_stac(work: Path, collections: dict[str, list[dict[str, Any]]]) -> Iterator[str]:
    """URL of ``rustac serve`` holding ``collections`` (id -> item dicts) while the block runs."""
    if not RUSTAC.exists():
        pytest.skip(f"rustac is not installed at {RUSTAC}")
    hrefs = []
    for name, features in collections.items():
        col = {"type": "Collection", "stac_version": "1.1.0", "id": name, "description": name, "license": "CC0-1.0",
               "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
               "links": []}
        (work / f"{name}.collection.json").write_text(json.dumps(col))
        (work / f"{name}.items.json").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        hrefs += [str(work / f"{name}.collection.json"), str(work / f"{name}.items.json")]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(RUSTAC), "serve", "--addr", f"127.0.0.1:{port}", *hrefs],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "error"})
    try:
        _wait_http(url + "/", proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def served_features(items: list[pystac.Item], collection: str, root: Path, base_url: str) -> list[dict[str, Any]]:
    """``items`` as an API serves them: in ``collection``, no links, asset hrefs under ``base_url`` (files under ``root``)."""
    features = []
    for item in items:
        d = item.to_dict(include_self_link=False, transform_hrefs=False)
        d["collection"] = collection
        d["links"] = []
        for asset in d["assets"].values():
            asset["href"] = f"{base_url}/{Path(asset['href']).relative_to(root).as_posix()}"
        features.append(d)
    return features


@pytest.fixture(scope="session")
def stac_api(ingest_catalog: IngestCatalog, http_files: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of ``rustac serve`` holding every test collection, assets served by ``http_files``."""
    collections = {name: served_features(items, name, ingest_catalog.root, http_files)
                   for name, items in ingest_catalog.items.items()}
    with serve_stac(tmp_path_factory.mktemp("rustac"), collections) as url:
        yield url


@pytest.fixture
def copy_catalog(ingest_catalog: IngestCatalog, tmp_path: Path) -> Path:
    """A private copy of the static catalog folder, for tests that break or modify files."""
    dst = tmp_path / "catalog_copy"
    shutil.copytree(ingest_catalog.root, dst)
    return dst / "stac" / "catalog.json"


ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def lsat7_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped Landsat 7 scene ingested as the demo does (examples/lsat7-ingest.toml) into a Zarr datacube, once."""
    import tomllib

    from registry_core import get_registry

    store = tmp_path_factory.mktemp("lsat7") / "datacube.zarr"
    options = tomllib.loads((ROOT / "examples" / "lsat7-ingest.toml").read_text())["data"]
    options.pop("use")
    options.update(catalog=str(ROOT / options["catalog"]), store=str(store), scheduler="synchronous")
    source = get_registry().build("data_source", "stac-zarr", **options)
    source.prepare()
    return store


#: The bands of the Landsat 7 datacube, in store order.
LSAT7_STORE_BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]


def tiny_pipeline_config(store: Path, **slots: Any) -> dict[str, Any]:
    """A small pipeline over the Landsat 7 datacube (ViT 2x32, patch 4, 16-pixel chips); ``slots`` replace tables."""
    config: dict[str, Any] = {
        "name": "tiny",
        "data": {"use": "zarr-chips", "store": str(store), "chip_size": 16, "sampling": "random",
                 "samples_per_epoch": 64, "val_fraction": 0.2, "bands": list(LSAT7_STORE_BANDS)},
        "tokenizer": {"use": "patch", "patch_size": 4},
        "positional": {"use": "sincos-2d"},
        "backbone": {"use": "vit", "embed_dim": 32, "depth": 2, "heads": 2},
        "objective": {"use": "mae", "decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2},
        "train": {"steps": 4, "batch_size": 8, "lr": 1e-3, "log_every": 2, "checkpoint_every": 0, "seed": 0},
    }
    config.update(slots)
    return config


@pytest.fixture(scope="session")
def tiny_mae_run(lsat7_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished (4-step) MAE run of a 2-block ViT on the Landsat 7 datacube: pipeline.toml + model.safetensors."""
    from registry_core import compose

    out = tmp_path_factory.mktemp("tiny-mae") / "run"
    pipeline = compose(tiny_pipeline_config(lsat7_store))
    pipeline.fit(out)
    pipeline.save(out)
    return out


STRATA = str(DATA / "strata.tif")
LABELS = {"labels": STRATA, "num_classes": 7, "label_values": [1, 2, 3, 4, 5, 6, 7], "min_labelled": 0.3}


def finetune_config(store: Path, run: Path | None = None, *, head: dict[str, Any] | None = None,
                    objective: dict[str, Any] | None = None, **data: Any) -> dict[str, Any]:
    """The tiny pipeline finetuned on the Landsat 7 strata labels (``run``: a pretrained run's weights)."""
    config = tiny_pipeline_config(store)
    config["data"].update(LABELS, **data)
    config["head"] = head or {"use": "segmentation", "channels": 8}
    config["objective"] = {"use": "finetune", **(objective or {})}
    if run is not None:
        config["weights"] = {"use": "from-run", "path": str(run)}
    return config
