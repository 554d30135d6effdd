"""Benchmark 3 of issue 5: chips/s from the Zarr datacube (zarr-chips) vs windowed reads of the source COGs.

Builds a synthetic scene: ``dates`` x ``bands`` single-band uint16 COGs (one file per band and date, as
STAC assets are published; deflate, 512-pixel tiles) and the matching Zarr v3 datacube in the stac-zarr
layout (chunks (1, bands, chunk, chunk) and the codecs of ``registry_gfm.cube.store.array_encoding``: Blosc lz4).
Then reads the same random (frames, bands, chip, chip) windows, single-process, with:

* ``zarr-chips``: ``ChipDataset[i]``: window draw, valid-mask check, read through its decoded-chunk
  cache of ``--cache-mb``, scale + normalise, lon/lat; and again with the cache off;
* ``rasterio, files kept open``: every COG opened once; GDAL's block cache (``GDAL_CACHEMAX``) set to the
  same ``--cache-mb``, so both sides get the same memory for decoded data;
* ``rasterio, open per chip``: the frames x bands COGs opened for every chip (GDAL drops a file's cached
  blocks when it is closed), as a dataset indexing a large archive of files does.

With the default cache of 32 MiB, the decoded scene (~200 MB) is 6x the caches: the regime of training
over an archive larger than memory. ``--cache-mb 1024`` shows the regime where everything stays cached.
The rasterio paths only read raw values (no normalisation, no mask): the comparison favours them.

    .venv/bin/python bench/gfm_chips.py                      # 4 dates x 6 bands x 2048^2, chip 128
    .venv/bin/python bench/gfm_chips.py --cache-mb 1024      # whole scene cached on both sides
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

NAMES = ("B02", "B03", "B04", "B8A", "B11", "B12")


def synthetic_scene(dates: int, bands: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth fields plus noise (compresses like real reflectance), uint16 (time, band, y, x)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((dates, bands, size, size), np.uint16)
    for t in range(dates):
        for b in range(bands):
            field = 2000 + 800 * np.sin(6 * xx + b) * np.cos(5 * yy + t) + 300 * b
            out[t, b] = (field + rng.normal(0, 60, size=(size, size))).clip(1, 65535).astype(np.uint16)
    return out


def write_cogs(image: np.ndarray, folder: Path, transform: tuple[float, ...], epsg: int) -> list[list[Path]]:
    """One COG per (date, band): paths[t][b]."""
    import rasterio
    from affine import Affine

    paths: list[list[Path]] = []
    for t in range(image.shape[0]):
        row = []
        for b in range(image.shape[1]):
            path = folder / f"scene_t{t}_{NAMES[b]}.tif"
            profile = {
                "driver": "COG",
                "width": image.shape[3],
                "height": image.shape[2],
                "count": 1,
                "dtype": "uint16",
                "crs": f"EPSG:{epsg}",
                "transform": Affine(*transform),
                "compress": "deflate",
                "predictor": 2,
                "blocksize": 512,
                "nodata": 0,
            }
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(image[t, b], 1)
            row.append(path)
        paths.append(row)
    return paths


def write_store(image: np.ndarray, path: Path, transform: tuple[float, ...], epsg: int, chunk: int) -> None:
    """The datacube in the stac-zarr layout, from the same pixels."""
    import xarray as xr
    from pyproj import CRS

    from registry_gfm.bands import lookup_band
    from registry_gfm.cube.store import array_encoding

    t, b, h, w = image.shape
    a, _, c, _, e, f = transform
    ds = xr.Dataset(
        {"image": (("time", "band", "y", "x"), image), "valid": (("time", "y", "x"), np.ones((t, h, w), np.uint8))},
        coords={
            "time": np.array([np.datetime64("2021-01-01", "ns") + np.timedelta64(16 * i, "D") for i in range(t)]),
            "band": np.array(NAMES[:b], dtype=object),
            "y": f + e * (np.arange(h) + 0.5),
            "x": c + a * (np.arange(w) + 0.5),
        },
        attrs={
            "crs_wkt": CRS.from_epsg(epsg).to_wkt(),
            "epsg": epsg,
            "transform": list(transform),
            "bands": [lookup_band(n, "hls-s30").store_metadata(n) for n in NAMES[:b]],
            "complete": True,
        },
    )
    enc = array_encoding(b, chunk, "uint16", 0)  # the chunking and codecs stac-zarr writes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(str(path), mode="w", zarr_format=3, encoding=enc, consolidated=True)


def read_cogs_open_per_chip(
    paths: list[list[Path]], window: tuple[int, int, int], chip: int, frames: int
) -> np.ndarray:
    import rasterio
    from rasterio.windows import Window

    t0, y0, x0 = window
    out = np.empty((frames, len(paths[0]), chip, chip), np.float32)
    for i in range(frames):
        for b, path in enumerate(paths[t0 + i]):
            with rasterio.open(path) as src:
                out[i, b] = src.read(1, window=Window(x0, y0, chip, chip))
    return out


def read_cogs_open(handles: list[list[object]], window: tuple[int, int, int], chip: int, frames: int) -> np.ndarray:
    from rasterio.windows import Window

    t0, y0, x0 = window
    out = np.empty((frames, len(handles[0]), chip, chip), np.float32)
    for i in range(frames):
        for b, src in enumerate(handles[t0 + i]):
            out[i, b] = src.read(1, window=Window(x0, y0, chip, chip))  # type: ignore[attr-defined]
    return out


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dates", type=int, default=4)
    parser.add_argument("--bands", type=int, default=6, choices=range(1, len(NAMES) + 1))
    parser.add_argument("--size", type=int, default=2048, help="scene width and height in pixels")
    parser.add_argument("--chip", type=int, default=128)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=256, help="Zarr spatial chunk (stac-zarr chunk_size)")
    parser.add_argument("--samples", type=int, default=200, help="chips read per method")
    parser.add_argument("--cache-mb", type=int, default=32, help="decoded-data cache of zarr-chips and of GDAL, MiB")
    parser.add_argument("--workdir", type=Path, default=None, help="where to build the data (default: a temp dir)")
    args = parser.parse_args()

    import rasterio

    from registry_gfm.chips.specs import ZarrChipsConfig
    from registry_gfm.chips.zarr_chips import ZarrChips

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        transform = (30.0, 0.0, 400000.0, 0.0, -30.0, 5000000.0)
        t_build = time.perf_counter()
        image = synthetic_scene(args.dates, args.bands, args.size)
        paths = write_cogs(image, folder, transform, 32633)
        store = folder / "scene.zarr"
        write_store(image, store, transform, 32633, args.chunk)
        del image
        cog_mb = sum(p.stat().st_size for row in paths for p in row) / 2**20
        zarr_mb = sum(p.stat().st_size for p in store.rglob("*") if p.is_file()) / 2**20
        print(
            f"scene: {args.dates} dates x {args.bands} bands x {args.size}^2 uint16; COGs {cog_mb:.0f} MB, "
            f"Zarr {zarr_mb:.0f} MB (chunk {args.chunk}); built in {time.perf_counter() - t_build:.1f} s"
        )
        print(
            f"chips: ({args.frames}, {args.bands}, {args.chip}, {args.chip}), {args.samples} per method, "
            "random windows, one process"
        )

        def zarr_chips(cache_mb: int) -> tuple[float, list[tuple[int, int, int]]]:
            cfg = ZarrChipsConfig(
                store=str(store),
                chip_size=args.chip,
                frames=args.frames,
                sampling="random",
                samples_per_epoch=args.samples,
                min_valid=0.5,
                val_fraction=0.0,
                mean=[0.0] * args.bands,
                std=[1.0] * args.bands,
                cache_mb=cache_mb,
            )
            ds = ZarrChips(cfg).dataset("train")
            ds._open()  # what the first item does in each DataLoader worker
            for i in range(min(5, len(ds))):  # warm up zarr's event loop and thread pool (once per worker)
                ds[len(ds) - 1 - i]
            ds._open()  # and start again with an empty chunk cache
            start = time.perf_counter()
            windows = []
            for i in range(len(ds)):
                t0, y0, x0 = (int(v) for v in ds[i]["window"])
                windows.append((t0, y0, x0))
            return rate(len(ds), time.perf_counter() - start), windows

        cached_rate, windows = zarr_chips(args.cache_mb)
        uncached_rate, _ = zarr_chips(0)

        with rasterio.Env(GDAL_CACHEMAX=args.cache_mb * 2**20):  # rasterio passes it to GDAL in bytes
            read_cogs_open_per_chip(paths, windows[-1], args.chip, args.frames)  # warm up GDAL
            start = time.perf_counter()
            for w in windows:
                read_cogs_open_per_chip(paths, w, args.chip, args.frames)
            reopen_rate = rate(len(windows), time.perf_counter() - start)

            handles = [[rasterio.open(p) for p in row] for row in paths]
            try:
                start = time.perf_counter()
                for w in windows:
                    read_cogs_open(handles, w, args.chip, args.frames)
                open_rate = rate(len(windows), time.perf_counter() - start)
            finally:
                for row in handles:
                    for h in row:
                        h.close()

        rows = [
            (f"zarr-chips (chunk cache {args.cache_mb} MiB)", cached_rate),
            ("zarr-chips (no chunk cache)", uncached_rate),
            (f"rasterio, files kept open (GDAL cache {args.cache_mb} MiB)", open_rate),
            ("rasterio, open per chip", reopen_rate),
        ]
        print(f"{'method':<50}{'chips/s':>10}{'zarr-chips / method':>22}")
        for name, value in rows:
            print(f"{name:<50}{value:>10.1f}{cached_rate / value:>22.2f}")


if __name__ == "__main__":
    main()
