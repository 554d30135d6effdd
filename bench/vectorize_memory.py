"""``vectorize``'s memory and speed against the scene size (the vectors issue: memory flat in the scene size).

Class maps of growing size with the same texture (7 classes from smoothed value noise: regions of tens to thousands
of pixels, as a land-cover map has) are polygonized in a fresh interpreter each, into a GeoPackage; printed: the
polygons, seconds, input pixels per second, the child's peak RSS (VmHWM) over its RSS before vectorizing, the peak
RSS of the writer process it starts for maps from 1024^2 (GDAL writes there; the two peaks need not coincide), and the
largest polygon's vertices (read back after the peak is taken). What is held between block rows is the boundary of
the regions still open along one block row; but at 7 classes one region of the middle class percolates across the
whole map (about a quarter of its pixels), and as one polygon it must exist whole at least once (its WKB: 16 bytes a
vertex), so the peak grows with that region's boundary, which grows with the scene. The anchor is the size of the
class map itself, which a whole-scene polygonizer (rasterio.features.shapes on the array) holds.

    .venv/bin/python bench/vectorize_memory.py                      # 2048, 4096, 8192: about 3 minutes on 2 cores
    .venv/bin/python bench/vectorize_memory.py --sizes 1024,2048
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = """
import json, sys, time
opts = json.loads(sys.argv[1])
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
from registry_gfm.predict import vectorize_file
import pyogrio, shapely, scipy.ndimage, rasterio.features  # one-time imports are not vectorize time
before = rss("VmRSS:")
t0 = time.perf_counter()
result = vectorize_file(opts["input"], opts["output"], block_size=opts["block"], overwrite=True)
seconds, peak = time.perf_counter() - t0, rss("VmHWM:")
import resource
writer = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the writer process's peak (0: none)
import pyarrow.compute as pc
from pyogrio.raw import read_arrow
_, table = read_arrow(opts["output"], columns=[])
largest = pc.max(pc.binary_length(table.column(table.num_columns - 1))).as_py()  # WKB: 16 bytes a vertex
print(json.dumps({"seconds": seconds, "features": result.features, "before_mb": before, "peak_mb": peak,
                  "writer_mb": writer, "largest_vertices": (largest - 9) // 16}))
"""


def make_map(path: Path, size: int, seed: int = 0) -> Path:
    """A (size, size) uint8 class map (7 classes, 255 nodata border) of smoothed value noise, as a tiled GeoTIFF."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8", nodata=255,
                       crs="EPSG:32119", transform=from_origin(600000, 250000, 30, 30), tiled=True, blockxsize=512,
                       blockysize=512, compress="deflate") as dst:
        for y0 in range(0, size, 1024):  # written by strips: the generator itself stays small
            h = min(1024, size - y0)
            noise = ndimage.gaussian_filter(rng.normal(size=(h + 64, size)).astype(np.float32), 6)[32:-32]
            classes = np.clip(((noise - noise.mean()) / (noise.std() + 1e-9) * 1.6 + 3.5), 0, 6).astype(np.uint8)
            if y0 == 0:
                classes[:8] = 255
            dst.write(classes, 1, window=Window(0, y0, size, h))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2048,4096,8192")
    parser.add_argument("--block-size", type=int, default=512)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vectorize_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        source = work / f"classes_{size}.tif"
        if not source.exists():
            make_map(source, size)
        opts = {"input": str(source), "output": str(work / f"polygons_{size}.gpkg"), "block": args.block_size}
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(opts)], check=True, stdout=subprocess.PIPE,
                              text=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append((size, row))
        print(f"{size}^2: {row['features']:,} polygons in {row['seconds']:.1f} s", flush=True)
    print(f"\nvectorize, block {args.block_size}, GeoPackage out, each size a fresh process")
    print(f"{'size':>8s} {'polygons':>10s} {'seconds':>8s} {'px/s':>12s} {'peak MiB':>9s} {'+ over start':>12s} "
          f"{'writer MiB':>10s} {'class map MiB':>13s} {'largest polygon vertices':>24s}")
    for size, row in rows:
        grown = row["peak_mb"] - row["before_mb"]
        print(f"{size:>6d}^2 {row['features']:>10,d} {row['seconds']:>8.1f} {size * size / row['seconds']:>12,.0f} "
              f"{row['peak_mb']:>9.0f} {grown:>12.0f} {row['writer_mb']:>10.0f} {size * size / 2**20:>13.0f} "
              f"{row['largest_vertices']:>24,d}")
    first, last = rows[0], rows[-1]
    grown = [r["peak_mb"] - r["before_mb"] for _, r in (first, last)]
    print(f"peak growth over start at {last[0]}^2 / at {first[0]}^2: {grown[1] / max(grown[0], 1e-9):.2f}x for "
          f"{(last[0] / first[0]) ** 2:.0f}x the pixels")


if __name__ == "__main__":
    main()
