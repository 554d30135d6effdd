"""registry-gfm's CLI command ``predict`` (run a trained pipeline over a whole scene into a COG or Zarr raster), and the
imagery options of the core's ``serve`` (``POST /v1/predict``; its code is in ``registry_gfm.serve``).

Declared in ``plugin.py``; this module is imported only when the command is parsed, and imports no
torch, dask or GDAL until the handler runs.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry_gfm.predict import PredictThreads

__all__ = ["add_imagery_serve_arguments", "add_predict_arguments", "add_vectorize_arguments", "predict", "vectorize"]

_DESCRIPTION = """\
Run a trained pipeline over a whole scene and write a Cloud-Optimized GeoTIFF (OUT.tif) or a Zarr
raster (OUT.zarr) with exactly the input's CRS and transform.

The scene is cut into overlapping tiles on one grid anchored at its top-left pixel (reflect-padded
past the edges), the tiles' outputs are blended with a cosine ramp, and the work is done block by
block as a dask graph: memory stays flat for any scene size, any dask scheduler runs it, and the
output is bit-identical for every --batch-size, --block-size and --scheduler.

A segmentation run writes a uint8 class map (255 where the input is not valid); --probabilities
writes the blended per-class probabilities instead, --embeddings the encoder's patch embeddings at
patch resolution (the only output of a run without a head, such as MAE pretraining).
"""

_EPILOG = """\
examples:
  predict runs/seg --input scene.tif --output landcover.tif
  predict runs/mae-tiny --input runs/lsat7/datacube.zarr --output emb.zarr --embeddings
  predict runs/seg --input item.json --output probs.tif --probabilities --scheduler local:4
  predict runs/seg --input bands.tif --bands b1,b2,b3 --band-map b1=blue,b2=green,b3=red --output out.tif
  predict runs/seg-3dates --input may.tif --input jul.tif --input sep.tif --output landcover.tif
  predict runs/seg-3dates --input datacube.zarr --time 4 --output landcover.tif   (time steps 4, 5 and 6)
"""


def _whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    return value


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``predict``; their help is the command's documentation."""
    parser.description = _DESCRIPTION
    parser.epilog = _EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("run", metavar="RUN_DIR", help="run folder written by `run X.toml --out RUN_DIR` "
                        "(pipeline.toml, model.safetensors and the lock)")
    io = parser.add_argument_group("input and output")
    io.add_argument("--input", required=True, action="append", metavar="SCENE",
                    help="the scene: a GeoTIFF / COG (bands named by their descriptions or --bands), a STAC item "
                         "JSON file (assets found by band name or common name) or a stac-zarr datacube folder; for "
                         "a run trained on several time steps, a datacube (its steps from --time on) or --input "
                         "once per time step on one grid (put in date order when each says its date: a STAC "
                         "item's datetime, a GeoTIFF's ACQUISITIONDATETIME, datetime or TIFFTAG_DATETIME tag)")
    io.add_argument("--output", required=True, metavar="OUT",
                    help="OUT.tif (Cloud-Optimized GeoTIFF: tiled, deflate, overviews, nodata set) or OUT.zarr "
                         "(the datacube layout, readable as predict input), or polygons of the class map: OUT.gpkg, "
                         "OUT.geojson, OUT.fgb or OUT.parquet (GeoParquet) with class, name, pixels, area_m2 and "
                         "mean probability; an existing one is refused unless --overwrite, and the output appears "
                         "only when complete")
    io.add_argument("--overwrite", action="store_true", help="replace an earlier prediction at --output (atomically, at the end); never an input or a file or folder registry-core did not write")
    io.add_argument("--bands", metavar="A,B,C", help="names of the GeoTIFF's bands in file order (one per band), "
                    "for files without band descriptions or with other names")
    io.add_argument("--band-map", metavar="INPUT=MODEL,...",
                    help="use input band INPUT as the model's band MODEL, e.g. b1=blue,b2=green; bands are "
                         "otherwise matched by name or identity (B8A is nir08)")
    io.add_argument("--time", type=_whole, default=0, metavar="T",
                    help="time step of a datacube input, the first of a run's several (default: %(default)s, the "
                         "first)")
    what = parser.add_argument_group("what to write")
    what.add_argument("--probabilities", action="store_true",
                      help="write the blended per-class probabilities (float32, one band per class) instead of "
                           "the class map")
    what.add_argument("--embeddings", action="store_true",
                      help="write the encoder's patch embeddings (float32, one band per feature) at patch "
                           "resolution: the transform is scaled by the patch size")
    _add_polygon_options(parser.add_argument_group("polygons (a vector --output)"))
    tiling = parser.add_argument_group("tiling")
    tiling.add_argument("--tile", type=_whole, default=None, metavar="PX",
                        help="tile side in input pixels, a multiple of the model's patch size (default: 64; for a "
                             "classification run a multiple of its chip size, each chip getting one class)")
    tiling.add_argument("--overlap", type=_whole, default=None, metavar="PX",
                        help="pixels shared by neighbouring tiles, smaller than --tile (default: 16; 0 for a "
                             "classification run)")
    tiling.add_argument("--blend", choices=("cosine", "linear", "none"), default="cosine",
                        help="weights of overlapping tiles: a raised-cosine or linear ramp over the overlap, or "
                             "none (plain averaging) (default: %(default)s)")
    compute = parser.add_argument_group("compute")
    compute.add_argument("--batch-size", type=_whole, default=16, metavar="N",
                         help="tiles read and handed to the model per call (default: %(default)s); does not "
                              "change the output")
    compute.add_argument("--compute-batch", type=_whole, default=16, metavar="N",
                         help="tiles per network forward pass, the last group padded with empty tiles (default: "
                              "%(default)s): kernels pick their algorithm by batch size, so this fixed size is what "
                              "keeps the output bit-identical; raise it on a GPU (the last bits may then differ)")
    compute.add_argument("--block-size", type=_whole, default=512, metavar="PX",
                         help="side of one dask block in input pixels, the unit of work and of memory; does not "
                              "change the output (default: %(default)s)")
    compute.add_argument("--scheduler", default="threads",
                         help="dask scheduler: threads, synchronous, local:N (N worker processes) or a "
                              "distributed scheduler address such as tcp://host:8786 (default: %(default)s)")
    compute.add_argument("--device", default=None, help="torch device of the model (default: cuda when available, "
                         "else cpu)")
    compute.add_argument("--threads", type=_whole, default=None, metavar="N",
                         help="torch threads of each model call (default: OMP_NUM_THREADS, else 1, or the usable "
                              "cores shared by the blocks of a scene with fewer blocks than cores; usable cores: the "
                              "CPU affinity, lowered to a cgroup quota). With threads, at most cores / N calls run at "
                              "once and dask gets one thread per usable core, so torch never has more threads than "
                              "cores; synchronous gives its one call every core by default, local:W workers N each "
                              "(default: cores / W); a cluster given by address keeps its own. Printed on stderr as "
                              "a `threads:` line")
    parser.add_argument("--quiet", action="store_true", help="no progress and no threads line on stderr (the "
                        "summary line is still printed)")


def _add_polygon_options(group: Any) -> None:
    """``--min-area``, ``--simplify`` and ``--fill-holes``: how regions become polygons (predict and vectorize)."""
    group.add_argument("--min-area", type=float, default=0.0, metavar="M2",
                       help="leave out regions smaller than this, in square metres (default: %(default)s)")
    group.add_argument("--simplify", type=float, default=0.0, metavar="TOL",
                       help="simplify the polygons by this tolerance in map units, as one coverage (neighbours keep "
                       "their shared edges; polygons are then held in memory) (default: %(default)s, none)")
    group.add_argument("--fill-holes", action="store_true",
                       help="drop polygons' holes (the regions inside them are still written)")


def add_vectorize_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``vectorize``."""
    parser.add_argument("raster", metavar="CLASS_MAP", help="a class-map raster (one band of whole numbers with a CRS), "
                        "such as predict's .tif output")
    parser.add_argument("--output", required=True, metavar="OUT",
                        help="OUT.gpkg (GeoPackage), OUT.geojson, OUT.fgb (FlatGeobuf) or OUT.parquet (GeoParquet): "
                        "one polygon per connected region of one class, with class, name, pixels and area_m2, in the "
                        "raster's CRS; it appears only when complete")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier output of ours at --output; "
                        "never an input or a file registry-core did not write")
    _add_polygon_options(parser)
    parser.add_argument("--block-size", type=int, default=512, metavar="PX",
                        help="side of the blocks read at a time; does not change the output (default: %(default)s)")


def vectorize(args: argparse.Namespace) -> int:
    """Polygonize the class map into --output (``--json``: the summary as JSON)."""
    from registry_gfm.predict import vectorize_file

    if not Path(args.raster).exists():
        from registry_gfm.errors import PredictError

        raise PredictError(f"input {args.raster} does not exist; expected a class-map raster")
    result = vectorize_file(args.raster, args.output, min_area=args.min_area, simplify=args.simplify,
                            fill_holes=args.fill_holes, block_size=args.block_size, overwrite=args.overwrite)
    return _report_polygons(result, args)


def _report_polygons(result: Any, args: argparse.Namespace, threads: PredictThreads | None = None) -> int:
    """Print what a polygon output holds: its summary line, or with ``--json`` the same as JSON (and predict's
    threads); exit 0."""
    if getattr(args, "json", False):
        from registry_core.cli import print_json

        document = {"output": str(result.output), "format": result.format, "features": result.features,
                    "dropped": result.dropped, "seconds": result.seconds, "pixels": result.pixels}
        if threads is not None:
            document["threads"] = threads.as_dict()
        print_json(document)
    else:
        print(result.summary())
    return 0


def add_imagery_serve_arguments(group: Any) -> None:
    """``serve``'s options for an imagery run (the core's ``serve`` adds them as a group): ``POST /v1/predict``."""
    group.add_argument("--max-pixels", type=int, default=2048 * 2048, metavar="PX",
                       help="the largest window accepted, in pixels (width x height; default: %(default)s)")
    group.add_argument("--tile", type=int, default=None, metavar="PX",
                       help="tile side in pixels unless a request says otherwise (default: 64, or whole chips of a "
                       "classification run)")
    group.add_argument("--overlap", type=int, default=None, metavar="PX",
                       help="pixels shared by neighbouring tiles unless a request says otherwise (default: 16, or 0 "
                       "for a classification run)")
    group.add_argument("--device", default=None, help="torch device of the model (default: cuda when available, "
                       "else cpu)")


def predict(args: argparse.Namespace) -> int:
    """Load the run's model, open the scene, predict it into --output (``--json``: the summary as JSON).

    Bad input raises errors of the ``RegistryCoreError`` hierarchy, which the CLI prints as one ``error:`` line.
    """
    from registry_gfm.errors import PredictError
    from registry_gfm.predict import (
        VECTOR_FORMATS,
        VectorOptions,
        check_output,
        check_scheduler,
        check_vector_output,
        choose_predict_threads,
        parse_band_map,
    )

    if args.probabilities and args.embeddings:
        raise PredictError("--probabilities and --embeddings exclude each other: a run writes class probabilities "
                           "or patch embeddings")
    vector = Path(args.output).suffix.lower() in VECTOR_FORMATS
    if vector and (args.probabilities or args.embeddings):
        raise PredictError(f"--output {args.output}: polygons are drawn from the class map; --probabilities and "
                           "--embeddings write a .tif or .zarr raster")
    if not vector and (args.min_area or args.simplify or args.fill_holes):
        raise PredictError("--min-area, --simplify and --fill-holes shape polygons; give a vector --output "
                           "(.gpkg, .geojson, .fgb, .parquet)")
    options = VectorOptions(args.min_area, args.fill_holes, args.simplify, args.block_size)
    options.check()
    if vector:  # both fail before the model loads
        check_vector_output(args.output, args.overwrite, inputs=[*args.input, args.run])
    else:
        check_output(args.output, args.overwrite, inputs=[*args.input, args.run])
    check_scheduler(args.scheduler)
    choose_predict_threads(args.threads, args.scheduler)  # a bad --threads fails before the model loads
    if "://" in args.scheduler:  # a scheduler given by address answers now, not after the model has loaded
        from registry_gfm.dask_runtime import probe_scheduler

        probe_scheduler(args.scheduler)
    band_map = parse_band_map(args.band_map)
    names = [b.strip() for b in args.bands.split(",")] if args.bands else None
    for text in args.input:
        if "://" not in text and not Path(text).exists():
            raise PredictError(f"--input {text} does not exist")
    return _predict(args, options, vector, band_map, names)


def _predict(args: argparse.Namespace, options: Any, vector: bool, band_map: dict[str, str],
             names: list[str] | None) -> int:
    """The heavy half of :func:`predict`, once the options are checked: load the model, open the scene, choose the
    threads for its blocks, predict, report."""
    from registry_gfm.errors import PredictError
    from registry_gfm.predict import (
        check_tiling,
        choose_predict_threads,
        default_tiling,
        load_run_model,
        model_info,
        open_scene,
        requested_names,
        torch_threads,
    )

    model = load_run_model(args.run, embeddings=args.embeddings, device=args.device,
                           compute_batch=args.compute_batch)
    info = model_info(model)
    if args.probabilities and info.classes is None:
        raise PredictError(f"--probabilities: run {args.run} writes values, not class probabilities")
    args.tile, args.overlap = default_tiling(info, args.tile, args.overlap)
    check_tiling(info, tile=args.tile, overlap=args.overlap, blend=args.blend, batch_size=args.batch_size,
                 block_size=args.block_size, compute_batch=args.compute_batch)
    scene = open_scene(args.input, requested_names(info.bands, band_map), names=names, time=args.time,
                       physical=info.physical, frames=info.frames)
    height, width = scene.shape
    blocks = math.ceil(height / args.block_size) * math.ceil(width / args.block_size)
    threads = choose_predict_threads(args.threads, args.scheduler, blocks=blocks)
    if threads is not None and not args.quiet:
        print(threads.describe(), file=sys.stderr, flush=True)
    with torch_threads(threads.torch if threads is not None else None):
        return _write_prediction(args, scene, model, options, vector, threads)


def _write_prediction(args: argparse.Namespace, scene: Any, model: Any, options: Any, vector: bool,
                      threads: PredictThreads | None) -> int:
    """Predict ``scene`` into --output with the threads chosen and print the summary (or its JSON)."""
    from registry_gfm.predict import predict_to_file, predict_to_vectors

    if vector:
        polygons = predict_to_vectors(scene, model, args.output, options, tile=args.tile, overlap=args.overlap,
                                      blend=args.blend, batch_size=args.batch_size, block_size=args.block_size,
                                      scheduler=args.scheduler, overwrite=args.overwrite, progress=not args.quiet,
                                      threads=threads)
        return _report_polygons(polygons, args, threads)
    result = predict_to_file(scene, model, args.output, tile=args.tile, overlap=args.overlap, blend=args.blend,
                             batch_size=args.batch_size, block_size=args.block_size, probabilities=args.probabilities,
                             scheduler=args.scheduler, overwrite=args.overwrite, progress=not args.quiet,
                             threads=threads)
    if getattr(args, "json", False):
        from registry_core.cli import print_json

        document = {"output": str(result.output), "format": result.format, "shape": list(result.shape),
                    "bytes": result.size, "seconds": result.seconds, "pixels": result.pixels}
        if threads is not None:
            document["threads"] = threads.as_dict()
        print_json(document)
    else:
        print(result.summary())
    return 0
