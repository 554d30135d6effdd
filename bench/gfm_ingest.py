"""Benchmarks of the ``stac-zarr`` ingest (issue 5, benchmarks 1, 2 and 4), printed side by side.

1. Ingest throughput vs a raw rasterio read of the same COGs (decoded MB/s; goal: ratio >= 0.7), and
   both vs a floor: the same COGs read, lz4-compressed and written as tiles with no framework at all.
2. Peak RSS of an ingest of a synthetic dates x 6-band x size^2 uint16 stack (goal at 4 x 6 x 8192^2,
   about 3.2 GB decoded: <= 1.5 GB).
4. A 2-worker LocalCluster vs the threaded scheduler on the same ingest.

Each ingest runs in a fresh subprocess so its peak RSS is its own. The synthetic COGs (smooth fields plus
noise, deflate, 512-pixel tiles) and their static STAC catalog are written once under ``--workdir``.

    .venv/bin/python bench/gfm_ingest.py --size 8192 --dates 4
    .venv/bin/python bench/gfm_ingest.py --size 2048 --dates 4 --repeats 1   # quick
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
COMMON = ("blue", "green", "red", "nir", "swir16", "swir22")


def make_stack(root: Path, size: int, dates: int) -> Path:
    """Synthetic COGs (uint16, EPSG:32617, 10 m) and a static catalog; returns catalog.json (reused if present)."""
    import pystac
    import rasterio
    from pystac.extensions.projection import ProjectionExtension
    from rasterio.transform import Affine

    catalog_json = root / "stac" / "catalog.json"
    if catalog_json.exists():
        return catalog_json
    rng = np.random.default_rng(0)
    transform = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
    cat = pystac.Catalog("bench", "synthetic ingest benchmark stack")
    col = pystac.Collection("synthetic", "synthetic", pystac.Extent(
        pystac.SpatialExtent([[-81.0, 35.0, -80.0, 36.2]]), pystac.TemporalExtent([[dt.datetime(2023, 1, 1, tzinfo=dt.UTC), None]])))
    cat.add_child(col)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for d in range(dates):
        item = pystac.Item(f"synthetic-{d}", {"type": "Polygon", "coordinates": [[[-81, 35], [-80, 35], [-80, 36.2],
                           [-81, 36.2], [-81, 35]]]}, [-81, 35, -80, 36.2],
                           dt.datetime(2023, 1 + d, 1, tzinfo=dt.UTC), {})
        proj = ProjectionExtension.ext(item, add_if_missing=True)
        proj.code, proj.transform, proj.shape = "EPSG:32617", list(transform)[:6], [size, size]
        for b, (band, common) in enumerate(zip(BANDS, COMMON)):
            field = 3000 + 2000 * np.sin(6 * xx + b + d) * np.cos(4 * yy - d)
            data = (field + rng.normal(0, 50, size=(size, size))).clip(1, 65535).astype(np.uint16)
            path = root / f"d{d}_{band}.tif"
            with rasterio.open(path, "w", driver="COG", dtype="uint16", count=1, width=size, height=size,
                               crs="EPSG:32617", transform=transform, nodata=0, compress="deflate",
                               blocksize=512, overviews="none") as dst:
                dst.write(data, 1)
            del data, field
            item.add_asset(band, pystac.Asset(str(path), media_type=pystac.MediaType.COG, extra_fields={
                "raster:bands": [{"data_type": "uint16", "nodata": 0}],
                "eo:bands": [{"name": band, "common_name": common}]}))
        col.add_item(item)
    cat.normalize_hrefs(str(root / "stac"))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return catalog_json


def write_floor(files: list[Path], threads: int, chunk: int, out: Path) -> float:
    """Seconds of the least work any ingest into the store's layout does: decode each COG (as the raw read),
    compress it in chunk x chunk tiles with the store's codec, and write each tile to a new file.

    No masking, no valid array, no Zarr or dask: the ratio of this to the raw read is the most an ingest that
    writes a compressed store can reach on this machine.
    """
    import numcodecs
    import rasterio

    from registry_gfm.cube.store import array_encoding

    (codec,) = array_encoding(6, chunk, "uint16", 0)["image"]["compressors"]
    blosc = numcodecs.Blosc(cname=codec.cname.value, clevel=codec.clevel, shuffle=numcodecs.Blosc.BITSHUFFLE)
    assert codec.shuffle.value == "bitshuffle", "the floor must use the store's codec"
    out.mkdir(parents=True, exist_ok=True)

    def read_encode_write(path: Path) -> int:
        with rasterio.open(path) as src:
            data = src.read(1)
        for i in range(0, data.shape[0], chunk):
            for j in range(0, data.shape[1], chunk):
                (out / f"{path.stem}.{i}.{j}").write_bytes(blosc.encode(np.ascontiguousarray(data[i:i + chunk, j:j + chunk])))
        return int(data.nbytes)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        sum(pool.map(read_encode_write, files))
    seconds = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def raw_rasterio_read(files: list[Path], threads: int) -> float:
    """Seconds to decode every file fully with ``threads`` threads (one file per task)."""
    import rasterio

    def read(path: Path) -> int:
        with rasterio.open(path) as src:
            return int(src.read(1).nbytes)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        sum(pool.map(read, files))
    return time.perf_counter() - start


# Peak RSS is the child's VmHWM: on Linux, getrusage's ru_maxrss survives fork + exec, so a child of a
# parent that just built an 8192^2 stack reported the parent's ~1.9 GB instead of its own peak.
CHILD = """
import json, resource, sys, time
import dask, odc.stac, rasterio, stackstac, xarray, zarr  # one-time imports are not ingest time
from registry_gfm.ingest.stac_zarr import run_ingest

def peak_rss_mb():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

opts = json.loads(sys.argv[1])
start = time.perf_counter()
run_ingest(opts, progress=False)
print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}))
"""


def ingest(catalog: Path, store: Path, scheduler: str, chunk: int) -> dict[str, float]:
    shutil.rmtree(store, ignore_errors=True)
    opts = {"catalog": str(catalog), "assets": list(BANDS), "store": str(store), "chunk_size": chunk,
            "scheduler": scheduler}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(opts)], check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(store, ignore_errors=True)
    return result


def warm_cluster_ingest(catalog: Path, store: Path, chunk: int) -> float:
    """Seconds of an ingest sent to a running 2-worker LocalCluster (workers started and warmed first)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(lambda: [__import__(m) for m in ("stackstac", "zarr", "rasterio", "registry_gfm.cube.store")]
                   and None)
        return ingest(catalog, store, cluster.scheduler_address, chunk)["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8192, help="pixels per side of each COG")
    parser.add_argument("--dates", type=int, default=4, help="number of dates (items)")
    parser.add_argument("--chunk", type=int, default=1024, help="chunk_size of the store")
    parser.add_argument("--threads", type=int, default=2, help="threads of the raw rasterio read")
    parser.add_argument("--workdir", type=Path, default=None, help="where to keep the COGs (default: a temp dir)")
    parser.add_argument("--skip-cluster", action="store_true", help="skip benchmark 4 (LocalCluster)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of raw read, floor and ingest for benchmark 1 "
                        "(each round runs all three back to back; medians are reported)")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="gfm_ingest_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    catalog = make_stack(work, args.size, args.dates)
    files = sorted(work.glob("d*_B*.tif"))
    decoded_mb = len(files) * args.size * args.size * 2 / 1e6
    print(f"stack: {args.dates} dates x {len(BANDS)} bands x {args.size}^2 uint16 = {decoded_mb:.0f} MB decoded, "
          f"{sum(f.stat().st_size for f in files) / 1e6:.0f} MB on disk (made in {time.perf_counter() - t0:.0f} s)")

    rounds = []
    for _ in range(args.repeats):  # the three side by side, again and again: this VM's speed drifts
        raw_s = raw_rasterio_read(files, args.threads)
        floor_s = write_floor(files, args.threads, args.chunk, work / "floor")
        run = ingest(catalog, work / "threads.zarr", "threads", args.chunk)
        rounds.append((decoded_mb / raw_s, decoded_mb / floor_s, decoded_mb / run["seconds"], run))
    raw_mbs, floor_mbs, ing_mbs = (statistics.median(r[k] for r in rounds) for k in range(3))
    threaded = min((r[3] for r in rounds), key=lambda run: abs(run["seconds"] - decoded_mb / ing_mbs))
    ratios = ", ".join(f"{r[2] / r[0]:.2f}" for r in rounds)
    print(f"[1] raw rasterio read ({args.threads} threads): {raw_mbs:8.1f} MB/s | stac-zarr ingest (threads): "
          f"{ing_mbs:8.1f} MB/s | ratio {ing_mbs / raw_mbs:.2f} (goal >= 0.7; medians of {args.repeats} rounds, "
          f"per round: {ratios})")
    print(f"    floor (read + lz4 + write the same tiles, {args.threads} threads): {floor_mbs:8.1f} MB/s | "
          f"floor / raw {floor_mbs / raw_mbs:.2f} (the most any compressed-store ingest reaches here) | "
          f"ingest / floor {ing_mbs / floor_mbs:.2f}")
    print(f"[2] peak RSS of the threaded ingest: {max(r[3]['peak_rss_mb'] for r in rounds):.0f} MB for {decoded_mb:.0f} MB decoded "
          f"(goal <= 1500 MB at 4 x 6 x 8192^2)")
    if not args.skip_cluster:
        cluster = ingest(catalog, work / "local.zarr", "local:2", args.chunk)
        print(f"[4] threads: {threaded['seconds']:.1f} s | LocalCluster(2 workers): {cluster['seconds']:.1f} s | "
              f"cluster/threads time ratio {cluster['seconds'] / threaded['seconds']:.2f} (cluster start-up included)")
        warm = warm_cluster_ingest(catalog, work / "warm.zarr", args.chunk)
        print(f"[4] threads: {threaded['seconds']:.1f} s | already-running LocalCluster(2 workers) by address: "
              f"{warm:.1f} s | ratio {warm / threaded['seconds']:.2f}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
