"""Benchmark: ``predict`` input pixels/s and peak RSS against the scene size (issue 11; goal: peak RSS at
8192^2 <= 1.2 x peak RSS at 1024^2).

The model is seg-tiny-sized with random weights (the ``seg-tiny`` recipe: 4-pixel patches, ViT 192 wide x 4
blocks x 4 heads, a 64-channel progressive segmentation head, 7 classes, 6 bands), saved once as a run folder;
the scenes are synthetic 6-band uint16 GeoTIFFs (smooth random texture, deflate, 512-pixel tiles, written
block by block), both kept under ``--workdir``. Each prediction runs in a FRESH interpreter doing what the
``predict`` command does (``load_run_model``, ``open_scene``, the command's thread plan, ``predict_to_file`` into
a class map), so the peak RSS (the child's VmHWM, read at its end) is that prediction's own.

Per size: seconds (opening the scene, building the graph, reading, the model, blending and writing the
output; not the interpreter start, imports and model load, shown apart), input pixels/s, peak RSS, and
RSS(size) / RSS(smallest size). ``--rounds`` fresh children per size (median seconds, largest RSS);
``--repeats`` timed predictions per child (their mean); ``--warmup`` untimed predictions per child before.

    .venv/bin/python bench/predict_scaling.py --sizes 1024,4096          # about 5 minutes on 2 CPU cores
    .venv/bin/python bench/predict_scaling.py --sizes 1024,4096,8192 --workdir /tmp/predict_bench --output zarr
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _predict_common import OURS_CHILD, make_run, make_scene, run_child  # bench/ (this script's folder)
from _timing import add_round_options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1024,4096,8192", help="scene sides in pixels, comma-separated; the "
                        "first is the RSS anchor (default: %(default)s)")
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--overlap", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=512)
    parser.add_argument("--scheduler", default="threads")
    parser.add_argument("--output", choices=("tif", "zarr"), default="tif", help="a COG or a Zarr class map")
    parser.add_argument("--workdir", type=Path, default=None, help="where the run folder, scenes and outputs go "
                        "(kept, and reused by later runs; default: a temp dir, removed)")
    parser.add_argument("--progress", action="store_true", help="the children's block progress bars on stderr")
    add_round_options(parser, warmup=0, rounds=1)
    args = parser.parse_args()  # --threads applies in the children, not here
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    work = args.workdir or Path(tempfile.mkdtemp(prefix="predict_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    run = make_run(work)
    rows = []
    for size in sizes:
        t0 = time.perf_counter()
        scene = make_scene(work, size)
        print(f"[{size}^2] scene {scene} ({scene.stat().st_size / 2**20:.0f} MiB on disk, ready in "
              f"{time.perf_counter() - t0:.0f} s); predicting ...", flush=True)
        out = work / f"pred_{size}.{args.output}"
        opts = {"run": str(run), "input": str(scene), "output": str(out), "tile": args.tile,
                "overlap": args.overlap, "batch_size": args.batch_size, "block_size": args.block_size,
                "scheduler": args.scheduler, "device": args.device, "threads": args.threads,
                "warmup": args.warmup, "repeats": args.repeats, "progress": args.progress}
        children = []
        for r in range(args.rounds):
            child = run_child(OURS_CHILD, opts)
            seconds = statistics.mean(x["seconds"] for x in child["runs"])
            children.append((seconds, child))
            print(f"[{size}^2] round {r + 1}/{args.rounds}: {seconds:.1f} s, {size * size / seconds:,.0f} input px/s, "
                  f"peak RSS {child['peak_rss_mb']:.0f} MiB", flush=True)
        seconds = statistics.median(s for s, _ in children)
        peak = max(c["peak_rss_mb"] for _, c in children)
        base = statistics.median(c["rss_after_load_mb"] for _, c in children)
        startup = statistics.median(c["startup_seconds"] for _, c in children)
        engine = statistics.median(statistics.mean(x["predict_seconds"] for x in c["runs"]) for _, c in children)
        rows.append((size, seconds, engine, peak, base, startup, children[0][1]["runs"][0]["size"]))
        if args.workdir is None:
            if out.is_file():
                out.unlink()
            else:
                shutil.rmtree(out, ignore_errors=True)

    print(f"\npredict of a seg-tiny-sized model (random weights) over synthetic 6-band uint16 GeoTIFFs -> "
          f"{'COG' if args.output == 'tif' else 'Zarr'} class map; tile {args.tile}, overlap {args.overlap}, batch "
          f"{args.batch_size}, block {args.block_size}, scheduler {args.scheduler}, device {args.device}, "
          f"{f'--threads {args.threads}' if args.threads else 'the command default threads'}; {args.rounds} fresh "
          f"process(es) per size x {args.repeats} timed run(s), {args.warmup} warmup")
    print(f"{'size':>11s} {'seconds':>9s} {'input px/s':>11s} {'peak RSS MiB':>13s} {'RSS/RSS0':>9s} "
          f"{'after load':>11s} {'run+write s':>12s} {'startup s':>10s} {'output':>11s}")
    anchor = rows[0][3]
    for size, seconds, engine, peak, base, startup, nbytes in rows:
        print(f"{size:>5d}^2 px {seconds:>9.1f} {size * size / seconds:>11,.0f} {peak:>13.0f} {peak / anchor:>9.3f} "
              f"{base:>11.0f} {engine:>12.1f} {startup:>10.1f} {nbytes / 2**20:>7.1f} MiB")
    print("seconds: in the child, opening the scene + building the dask graph + reading the GeoTIFF + the model + "
          "blending + writing the output (a COG: Zarr blocks, then converted); run+write s: the part of it on "
          "predict_to_file's own clock (the dask run and the writing). startup s: the child's interpreter start, "
          "imports and model load (not in seconds). peak RSS: the child's VmHWM; after load: its high-water mark "
          f"once torch and the model are loaded. RSS/RSS0: against {rows[0][0]}^2 (goal at 8192^2: <= 1.2)")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
