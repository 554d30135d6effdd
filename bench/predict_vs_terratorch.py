"""Benchmark: ``predict`` against TerraTorch's ``tiled_inference`` on the same model, scene and tiling (issue 11;
goals: input pixels/s ours / theirs >= 1.0, peak RSS ours / theirs <= 0.25 at the largest size).

Both sides run the seg-tiny-sized model with random weights (see ``predict_scaling.py``; ``--run DIR``: a trained
run folder of the ``seg-tiny`` recipe instead, such as the demo's ``runs/seg-tiny``: the same network and cost, but
a map of land-cover-like regions rather than the random model's salt and pepper, which matters to ``--vectors``)
over the same synthetic 6-band GeoTIFF, each in a FRESH interpreter (peak RSS: the child's VmHWM), alternating
within each round:

- ours: what the ``predict`` command does (``load_run_model``, ``open_scene``, the threads of
  ``choose_predict_threads`` for the scene's blocks: torch threads per model call, model calls at once, dask
  threads; ``predict_to_file``) into a class map; timed from opening the scene to the finished output file:
  reading the GeoTIFF by blocks, the model, the cosine blending and writing the COG / Zarr are all in.
  ``--threads N`` is the command's ``--threads`` for ours and torch's threads for theirs (default: the command's
  choice for ours, torch's default for theirs).
- theirs: ``terratorch.tasks.tiled_inference.tiled_inference`` on the whole scene read with rasterio into one
  (1, 6, H, W) float32 tensor, normalised in place exactly as our model normalises its tiles (the run's mean /
  std, invalid pixels zeroed); its ``model_forward`` is our model's own ``softmax(objective.logits(parts, x))``
  (B, 6, h, w) -> (B, 7, h, w). Timed: ``tiled_inference`` plus the argmax to a uint8 class map, nothing else
  (its reading and normalising are shown apart and not in the ratio; it writes no file).

Like for like: crop = ``--tile``, stride = tile - ``--overlap``, the same ``--batch-size``, ``delta`` 0 (no border
cropped off the tiles' outputs) with ``padding=False`` (TerraTorch's reflect padding is ``delta`` wide, so with
``delta`` 0 it is off; its last tiles are then flush with the scene's right / bottom edge, ours reflect-pad past
it), ``blend_overlaps`` (its cosine ramp over the overlap) and ``average_patches``. When (size - tile) is a
multiple of the stride, both grids put their tiles at the very same places. The agreement check is the share of
pixels where both class maps say the same class (and the share of the most common class, for scale).

``--memory-sizes 8192`` adds rows where both sides swap the ViT for the same seeded per-pixel linear map of the
normalised bands: the model then costs next to nothing, so the peak RSS of a large scene (TerraTorch holds the
scene, a float32 accumulator of every class and the averaged output in memory; ours a few blocks) is measured in
minutes instead of an hour on 2 cores. Their speeds are the tiling machinery's, not the model's.

TerraTorch is found by ``--terratorch-path`` or ``TERRATORCH_PATH`` (a ``pip install --target DIR terratorch
--no-deps`` folder, the package folder, or ``tiled_inference.py`` itself), else an installed ``terratorch``;
only its ``tasks/tiled_inference.py`` is loaded (see ``_predict_common.load_tiled_inference``). Without it the
script says so and exits 0.

    pip install --target /work/tt-site terratorch --no-deps
    .venv/bin/python bench/predict_vs_terratorch.py --terratorch-path /work/tt-site --sizes 1024,4096
    .venv/bin/python bench/predict_vs_terratorch.py --terratorch-path /work/tt-site --sizes '' --memory-sizes 8192
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _predict_common import (  # bench/ (this script's folder)
    OURS_CHILD,
    THEIRS_CHILD,
    load_tiled_inference,
    make_run,
    make_scene,
    run_child,
)
from _timing import add_round_options


def our_tile_calls(size: int, tile: int, overlap: int, block: int, batch: int) -> tuple[int, int, int]:
    """(tiles ``predict`` computes, its model's tile evaluations, distinct tiles of its grid): each block's task
    computes the tiles it owns, ``batch`` per call, and the run's model pads each call to whole groups of its
    ``compute_batch`` (16) tiles, so a block's last call may evaluate zero tiles."""
    from registry_gfm.predict import COMPUTE_BATCH, TileGrid
    from registry_gfm.predict._engine import group_side, owned_tiles

    grid = TileGrid(size, size, tile, overlap)
    edges = [(lo, min(lo + block, size)) for lo in range(0, size, block)]
    owned = [len(r) for r in owned_tiles(grid, edges, 0, group_side(COMPUTE_BATCH))]
    counts = [rows * cols for rows in owned for cols in owned]
    groups = [-(-min(batch, n - start) // COMPUTE_BATCH) for n in counts for start in range(0, n, batch)]
    return sum(counts), sum(groups) * COMPUTE_BATCH, grid.rows * grid.cols


def read_classes(path: Path) -> np.ndarray:
    """The (H, W) uint8 class map ``predict`` wrote (a COG or a Zarr store)."""
    if path.suffix == ".zarr":
        import xarray as xr

        return np.asarray(xr.open_zarr(path, consolidated=None)["image"][0, 0].values)
    import rasterio

    with rasterio.open(path) as src:
        return np.asarray(src.read(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1024,4096", help="scene sides in pixels, comma-separated; the RSS "
                        "ratio's goal is at the largest (default: %(default)s)")
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--overlap", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--memory-sizes", default="", help="more sizes run with a per-pixel linear head in place "
                        "of the ViT on both sides (memory-only rows: the model costs next to nothing, so a large "
                        "scene's peak RSS is measured in minutes), e.g. 8192")
    parser.add_argument("--block-size", type=int, default=512, help="ours only")
    parser.add_argument("--scheduler", default="threads", help="ours only")
    parser.add_argument("--delta", type=int, default=0, help="TerraTorch's border cropped off each tile's output "
                        "(0: none, like ours; > 0 also turns on its reflect padding)")
    parser.add_argument("--output", choices=("tif", "zarr"), default="tif", help="ours: a COG or a Zarr class map")
    parser.add_argument("--vectors", action="store_true", help="ours: also predict into polygons (.gpkg) each round, "
                        "and print the vector path's time over the raster path's (goal <= 1.3)")
    parser.add_argument("--terratorch-path", default=os.environ.get("TERRATORCH_PATH"),
                        help="a folder holding terratorch/ (pip install --target), the package folder or "
                        "tiled_inference.py (default: $TERRATORCH_PATH, else an installed terratorch)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the run folder, scenes and outputs go "
                        "(kept, and reused by later runs; default: a temp dir, removed)")
    parser.add_argument("--run", type=Path, default=None, help="a trained seg-tiny run folder (e.g. runs/seg-tiny "
                        "after make demo) in place of the random-weight one: the same cost, a realistic class map")
    parser.add_argument("--progress", action="store_true", help="the children's progress bars on stderr")
    add_round_options(parser, warmup=0, rounds=1)
    args = parser.parse_args()  # --threads applies in the children, not here
    if args.warmup or args.repeats != 1:
        parser.error("--warmup and --repeats: every measurement is one fresh process (use --rounds)")
    if args.run is not None and not (args.run / "pipeline.toml").is_file():
        parser.error(f"--run {args.run}: not a run folder (no pipeline.toml)")
    try:
        _, origin = load_tiled_inference(args.terratorch_path)
    except Exception as exc:  # ImportError, or the module failing at import
        print(f"skipped: TerraTorch's tiled_inference cannot be imported ({type(exc).__name__}: {exc}); "
              "pip install --target DIR terratorch --no-deps, then pass --terratorch-path DIR or set TERRATORCH_PATH")
        return
    print(f"theirs: {origin}")
    jobs = [(int(s), False) for s in args.sizes.split(",") if s.strip()]
    jobs += [(int(s), True) for s in args.memory_sizes.split(",") if s.strip()]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="predict_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    run = args.run or make_run(work)
    common = {"run": str(run), "tile": args.tile, "overlap": args.overlap, "batch_size": args.batch_size,
              "device": args.device, "threads": args.threads, "progress": args.progress}
    rows: list[dict[str, Any]] = []
    for size, linear in jobs:
        scene = make_scene(work, size)
        tag = f"{size}{'_linear' if linear else ''}"
        out, classes = work / f"pred_{tag}.{args.output}", work / f"terratorch_{tag}.npy"
        ours_opts = {**common, "input": str(scene), "output": str(out), "block_size": args.block_size,
                     "scheduler": args.scheduler, "warmup": 0, "repeats": 1, "linear_head": linear}
        theirs_opts = {**common, "input": str(scene), "classes": str(classes), "delta": args.delta,
                       "padding": "reflect" if args.delta else False, "terratorch": args.terratorch_path,
                       "linear_head": linear}
        size_label = f"{size}^2{' linear head' if linear else ''}"
        ours, theirs, vectors = [], [], []
        for r in range(args.rounds):
            print(f"[{size_label}] round {r + 1}/{args.rounds}: ours ...", flush=True)
            ours.append(run_child(OURS_CHILD, ours_opts))
            print(f"[{size_label}] ours {ours[-1]['runs'][0]['seconds']:.1f} s, peak RSS {ours[-1]['peak_rss_mb']:.0f} MiB; "
                  "theirs ...", flush=True)
            theirs.append(run_child(THEIRS_CHILD, theirs_opts))
            if args.vectors:
                vectors.append(run_child(OURS_CHILD, {**ours_opts, "output": str(work / f"pred_{tag}.gpkg")}))
                print(f"[{size_label}] ours to polygons {vectors[-1]['runs'][0]['seconds']:.1f} s", flush=True)
            print(f"[{size_label}] theirs {theirs[-1]['infer_seconds']:.1f} s (+ {theirs[-1]['read_seconds']:.1f} s "
                  f"reading), peak RSS {theirs[-1]['peak_rss_mb']:.0f} MiB", flush=True)
        mine, other = read_classes(out), np.load(classes)
        assert mine.shape == other.shape, (mine.shape, other.shape)
        counts = np.bincount(mine.ravel(), minlength=256)
        calls, evaluated, distinct = our_tile_calls(size, args.tile, args.overlap, args.block_size, args.batch_size)
        rows.append({"size": size, "linear": linear, "ours_s": statistics.median(o["runs"][0]["seconds"] for o in ours),
                     "theirs_s": statistics.median(t["infer_seconds"] for t in theirs),
                     "read_s": statistics.median(t["read_seconds"] for t in theirs),
                     "ratios": [t["infer_seconds"] / o["runs"][0]["seconds"] for o, t in zip(ours, theirs)],
                     "ours_rss": max(o["peak_rss_mb"] for o in ours), "theirs_rss": max(t["peak_rss_mb"] for t in theirs),
                     "ours_base": ours[0]["rss_after_load_mb"], "theirs_base": theirs[0]["rss_after_load_mb"],
                     "agree": float((mine == other).mean()), "major": counts.max() / mine.size,
                     "calls": calls, "evaluated": evaluated, "distinct": distinct,
                     "their_tiles": theirs[0]["tiles"], "threads": ours[0]["threads"],
                     "vector_ratios": [v["runs"][0]["seconds"] / o["runs"][0]["seconds"] for v, o in zip(vectors, ours)],
                     "vector_seconds": [v["runs"][0]["seconds"] for v in vectors],
                     "polygons": vectors[-1]["runs"][0].get("features") if vectors else None})
        if args.workdir is None:
            classes.unlink()

    model = f"the trained run {args.run}" if args.run else "seg-tiny-sized model (random weights)"
    print(f"\n{model}, synthetic 6-band uint16 GeoTIFF, tile {args.tile}, overlap "
          f"{args.overlap} (stride {args.tile - args.overlap}), batch {args.batch_size}; ours: block {args.block_size}, "
          f"scheduler {args.scheduler}, {'COG' if args.output == 'tif' else 'Zarr'} output; theirs: delta {args.delta}, "
          f"padding {'reflect' if args.delta else False}; device {args.device}; threads: "
          f"{f'--threads {args.threads}' if args.threads else 'the command default (ours), torch default (theirs)'}; "
          f"medians of {args.rounds} round(s), each side a fresh process")
    print(f"{'size':>14s} | {'ours px/s':>10s} {'theirs px/s':>11s} {'ours/theirs':>11s} {'per round':>10s} | "
          f"{'ours RSS':>8s} {'theirs RSS':>10s} {'ours/theirs':>11s} | {'agree':>7s} {'top class':>9s} | "
          f"{'ours tiles':>10s} {'theirs tiles':>12s}")
    for row in rows:
        px = row["size"] ** 2
        per_round = ", ".join(f"{x:.2f}" for x in row["ratios"])
        label = f"{row['size']}^2{' linear' if row['linear'] else ''}"
        print(f"{label:>14s} | {px / row['ours_s']:>10,.0f} {px / row['theirs_s']:>11,.0f} "
              f"{row['theirs_s'] / row['ours_s']:>11.3f} {per_round:>10s} | {row['ours_rss']:>8.0f} "
              f"{row['theirs_rss']:>10.0f} {row['ours_rss'] / row['theirs_rss']:>11.3f} | {row['agree']:>7.2%} "
              f"{row['major']:>9.1%} | {row['calls']:>10,d} {row['their_tiles']:>12,d}")
    full = [r for r in rows if not r["linear"]]
    if full:
        last = max(full, key=lambda r: r["size"])
        print(f"model rows, at {last['size']}^2: pixels/s ours / theirs {last['theirs_s'] / last['ours_s']:.3f} (goal >= 1.0); "
              f"peak RSS ours / theirs {last['ours_rss'] / last['theirs_rss']:.3f} (goal <= 0.25 at the largest size)")
    big = max(rows, key=lambda r: (r["size"], not r["linear"]))
    if big["linear"]:
        print(f"largest size, {big['size']}^2 (linear head): peak RSS ours / theirs "
              f"{big['ours_rss'] / big['theirs_rss']:.3f} (goal <= 0.25)")
    print("ours: seconds from opening the scene to the finished output file (GeoTIFF read by blocks, model, "
          "blending, class map written). theirs: tiled_inference + argmax only, on the scene already in memory; "
          "its read + normalise took " + ", ".join(f"{r['read_s']:.1f} s at {r['size']}^2" for r in rows) +
          " (not counted). RSS: each child's VmHWM in MiB; after loading torch and the model (before any scene "
          "work) ours " + ", ".join(f"{r['ours_base']:.0f}" for r in rows) + ", theirs " +
          ", ".join(f"{r['theirs_base']:.0f}" for r in rows) + " MiB. agree: share of pixels with the same class; "
          "top class: share of ours' most common class. ours tiles: tiles computed (each tile once, by the block that "
          "owns it; " + ", ".join(f"{r['calls'] / r['distinct']:.2f}x the {r['distinct']:,d} distinct "
                                            f"tiles at {r['size']}^2" for r in rows) + "); the model evaluates "
          + ", ".join(f"{r['evaluated']:,d}" for r in rows) + " tiles, zero tiles padding a block's last call to a "
          "whole group of 16 where its tiles are not whole groups (theirs: a short last batch)")
    for row in rows[:1]:
        if row["threads"]:
            t = row["threads"]
            print(f"ours' threads (choose_predict_threads, as the predict command): torch {t['torch']} per model "
                  f"call, {t['calls']} call(s) at a time, {t['dask']} dask thread(s) ({t['source']})")
    for row in rows:
        if row["vector_ratios"]:
            print(f"vectors at {row['size']}^2: predict into polygons (.gpkg) / into the raster: "
                  f"{statistics.median(row['vector_ratios']):.3f}x the time (goal <= 1.3); per round "
                  f"{', '.join(f'{x:.2f}' for x in row['vector_ratios'])} (polygons "
                  f"{', '.join(f'{x:.1f}' for x in row['vector_seconds'])} s; {row['polygons']:,} polygons, "
                  f"{row['polygons'] / row['size'] ** 2:.3f} per pixel)")
    if any(r["linear"] for r in rows):
        print("linear rows (--memory-sizes): both sides run a seeded per-pixel linear map of the normalised bands in "
              "place of the ViT: their peak RSS is the tiling machinery's (input, accumulators, output), their "
              "speeds are not the model's")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
