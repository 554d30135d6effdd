"""How fast polygonizing a class map is (the vectors issue: ``predict --output x.gpkg`` within 1.3x the raster path).

Polygonizes class maps held in memory through ``write_vectors`` (the step ``predict --output x.gpkg`` adds to the
raster path), with a per-pixel probability as predict gives it, into a GeoPackage; prints pixels per second and
polygons per second side by side, and how much of the time is spent finding the regions (labelling, tracing, joining,
normalising, WKB) and the writer each alone. Textures:

* ``noise``: salt and pepper, each pixel an independent class (weights 0.35/0.3/0.2/0.15: about 0.45 regions per
  pixel, as a random-weight model's class map in bench/predict_vs_terratorch.py);
* ``smooth``: 7 classes of smoothed value noise (bench/vectorize_memory.py's land-cover-like texture);
* ``strata``: the real Landsat 7 strata map (tests/data/gfm_lsat7/strata.tif, 443 x 489), tiled to the size.

    .venv/bin/python bench/vectorize_speed.py                          # every texture at 1024^2 and 2048^2
    .venv/bin/python bench/vectorize_speed.py --texture noise --sizes 1024 --profile   # cProfile's top 25
    .venv/bin/python bench/vectorize_speed.py --format .parquet    # the writer's share: GeoParquet against GPKG
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from registry_gfm.predict._regions import regions
from registry_gfm.predict._vectors import VECTOR_FORMATS, ClassGrid, VectorOptions, write_vectors

ROOT = Path(__file__).resolve().parents[1]
STRATA = ROOT / "tests" / "data" / "gfm_lsat7" / "strata.tif"
TEXTURES = ("noise", "smooth", "strata")


def class_map(texture: str, size: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """A (size, size) uint8 class map of ``texture`` and its nodata value."""
    rng = np.random.default_rng(seed)
    if texture == "noise":
        return rng.choice(4, size=(size, size), p=[0.35, 0.3, 0.2, 0.15]).astype(np.uint8), 255
    if texture == "smooth":
        from scipy import ndimage

        noise = ndimage.gaussian_filter(rng.normal(size=(size, size)).astype(np.float32), 6)
        return np.clip((noise - noise.mean()) / (noise.std() + 1e-9) * 1.6 + 3.5, 0, 6).astype(np.uint8), 255
    import rasterio

    with rasterio.open(STRATA) as src:
        tile, nodata = src.read(1), int(src.nodata if src.nodata is not None else 0)
    reps = (-(-size // tile.shape[0]), -(-size // tile.shape[1]))
    return np.tile(tile, reps)[:size, :size].copy(), nodata


def grid(classes: np.ndarray, nodata: int) -> ClassGrid:
    """A ClassGrid over ``classes`` in memory, with a probability per pixel (as predict's staging store gives)."""
    from affine import Affine

    probability = np.random.default_rng(1).uniform(0.3, 1.0, classes.shape).astype(np.float32)

    def read(x0: int, y0: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        return classes[y0 : y0 + h, x0 : x0 + w], probability[y0 : y0 + h, x0 : x0 + w]

    height, width = classes.shape
    return ClassGrid(read, height, width, "EPSG:32119", Affine(30, 0, 600000, 0, -30, 250000), nodata, None,
                     scored=True)


def writer_alone(g: ClassGrid, out: Path, fmt: str, block: int) -> float:
    """Seconds the writer alone takes (``write_features``, as ``write_vectors`` runs it) on the features computed
    beforehand: the least the polygon step can take, however fast the regions are found."""
    from pyproj import CRS

    from registry_gfm.predict._vectors import _record_batches, write_features

    crs = CRS.from_user_input(g.crs_wkt)
    batches = list(_record_batches(g, crs, VectorOptions(block_size=block), g.scored, {"written": 0, "dropped": 0}))
    with tempfile.TemporaryDirectory(dir=out.parent) as folder:
        t0 = time.perf_counter()
        write_features(Path(folder) / out.name, fmt, (crs.to_wkt(), crs.to_json()), g.scored, iter(batches),
                       "polygons", g.height * g.width)
        return time.perf_counter() - t0


def measure(texture: str, size: int, block: int, work: Path, profile: bool, suffix: str) -> dict[str, float]:
    """Seconds finding the regions alone, the writer alone and writing the file end to end, and the polygons."""
    classes, nodata = class_map(texture, size)
    g = grid(classes, nodata)
    t0 = time.perf_counter()
    found_regions = sum(len(batch[0]) for batch in regions(g.read, size, size, block, nodata))
    found = time.perf_counter() - t0
    writer = writer_alone(g, work / f"{texture}_{size}{suffix}", VECTOR_FORMATS[suffix], block)
    profiler = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    result = write_vectors(g, work / f"{texture}_{size}{suffix}", VECTOR_FORMATS[suffix],
                           VectorOptions(block_size=block), overwrite=True)
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
    assert result.features == found_regions
    return {"regions_s": found, "writer_s": writer, "total_s": time.perf_counter() - t0, "polygons": found_regions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texture", choices=[*TEXTURES, "all"], default="all")
    parser.add_argument("--sizes", default="1024,2048")
    parser.add_argument("--block-size", type=int, default=512)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--format", choices=list(VECTOR_FORMATS), default=".gpkg", help="output suffix")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top 25 (cumulative) of the write")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vectorize_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    import pyogrio  # noqa: F401  one-time imports are not vectorize time
    import rasterio.features  # noqa: F401
    import scipy.ndimage  # noqa: F401
    import shapely  # noqa: F401

    rows = []
    for texture in TEXTURES if args.texture == "all" else (args.texture,):
        for size in (int(s) for s in args.sizes.split(",") if s.strip()):
            row = measure(texture, size, args.block_size, work, args.profile, args.format)
            rows.append((texture, size, row))
            print(f"{texture} {size}^2: {row['polygons']:,.0f} polygons in {row['total_s']:.1f} s", flush=True)
    print(f"\nwrite_vectors (scored, {VECTOR_FORMATS[args.format]}), block {args.block_size}, class maps in memory; "
          "regions s: finding and shaping them alone (no writer); writer s: the writer alone on the features made "
          "beforehand (its process start included); total s: write_vectors end to end")
    print(f"{'texture':>8s} {'size':>7s} {'polygons':>10s} {'poly/px':>7s} {'regions s':>9s} {'writer s':>8s} "
          f"{'total s':>8s} {'px/s':>11s} {'polygons/s':>11s}")
    for texture, size, row in rows:
        pixels = size * size
        print(f"{texture:>8s} {size:>5d}^2 {row['polygons']:>10,.0f} {row['polygons'] / pixels:>7.3f} "
              f"{row['regions_s']:>9.2f} {row['writer_s']:>8.2f} {row['total_s']:>8.2f} "
              f"{pixels / row['total_s']:>11,.0f} "
              f"{row['polygons'] / row['total_s']:>11,.0f}")


if __name__ == "__main__":
    main()
