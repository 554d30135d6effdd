"""``predict_to_file``: a tile model over a scene into a COG or a Zarr raster, end to end.

The engine's blocks stream into a Zarr store (each block written by the task that computed it, on any
worker); a ``.tif`` output is then converted from that store block by block. Peak memory is a few
blocks, whatever the scene size.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry_core.atomic import writer_lock
from registry_gfm.dask_runtime import run_blocks, scheduler_problem
from registry_gfm.errors import PredictError
from registry_gfm.predict._engine import (
    CLASS_NODATA,
    class_and_score,
    class_map,
    output_transform,
    predict_blocks,
)
from registry_gfm.predict._grid import Blend
from registry_gfm.predict._scene import Scene
from registry_gfm.predict._sinks import (
    RasterMeta,
    check_output,
    create_zarr,
    finish_zarr,
    publish,
    staging,
    sweep_staging,
    write_zarr_block,
    zarr_to_cog,
)
from registry_gfm.predict._threads import PredictThreads
from registry_gfm.predict._tile_model import ModelInfo, model_info

__all__ = ["PredictResult", "check_scheduler", "predict_to_file", "predict_to_vectors"]

log = logging.getLogger(__name__)


def check_scheduler(spec: str) -> str:
    """``spec`` when it names a dask scheduler; PredictError saying which forms are accepted otherwise."""
    problem = scheduler_problem(spec)
    if problem is None:
        return spec
    raise PredictError(f"--scheduler {problem}")


@dataclass(frozen=True)
class PredictResult:
    """What a prediction wrote, and how fast."""

    output: Path
    #: ``"cog"`` or ``"zarr"``.
    format: str
    #: (bands, height, width) of the output raster.
    shape: tuple[int, int, int]
    #: Bytes on disk (every file of a Zarr store).
    size: int
    seconds: float
    #: Input pixels (height x width of the scene).
    pixels: int

    @property
    def pixels_per_second(self) -> float:
        return self.pixels / max(self.seconds, 1e-9)

    def summary(self) -> str:
        """One line: the path, its size and shape, and the input pixels per second."""
        bands, height, width = self.shape
        return (f"wrote {self.output} ({_human(self.size)}, {bands} band{'s' if bands != 1 else ''} of {height} x "
                f"{width} px) in {self.seconds:.1f} s: {self.pixels_per_second:,.0f} input px/s")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _disk_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def predict_to_file(scene: Scene, model: Any, output: str | Path, *, tile: int = 64, overlap: int = 16,
                    blend: Blend = "cosine", batch_size: int = 16, block_size: int = 512,
                    probabilities: bool = False, scheduler: str = "threads", overwrite: bool = False,
                    progress: bool = False, threads: PredictThreads | None = None) -> PredictResult:
    """Predict ``scene`` with ``model`` into ``output`` (``.tif``: a COG; ``.zarr``: a datacube-layout store).

    A model with ``classes`` writes a uint8 class map (255 where the input is not valid), or with
    ``probabilities`` its blended per-class probabilities; other models write their float32 outputs
    (NaN where not valid). The output has the input's CRS, and its transform scaled by the model's factor.
    ``threads`` (:func:`~registry_gfm.predict.choose_predict_threads`): the model calls at once and dask's threads
    in this process, torch's in ``local:N`` workers; the caller sets this process's torch threads (default: dask's
    and torch's own choices).
    """
    def select(values: Any, info: ModelInfo) -> tuple[Any, str, float, tuple[str, ...]]:
        if info.classes is not None and not probabilities:
            return class_map(values), "uint8", float(CLASS_NODATA), ("class",)
        return values, "float32", float("nan"), info.outputs

    return _predict_raster(scene, model, output, select, tile=tile, overlap=overlap, blend=blend,
                           batch_size=batch_size, block_size=block_size, scheduler=scheduler, overwrite=overwrite,
                           progress=progress, threads=threads)


def _predict_raster(scene: Scene, model: Any, output: str | Path,
                    select: Callable[[Any, ModelInfo], tuple[Any, str, float, tuple[str, ...]]], *, tile: int,
                    overlap: int, blend: Blend, batch_size: int, block_size: int, scheduler: str, overwrite: bool,
                    progress: bool, threads: PredictThreads | None) -> PredictResult:
    """:func:`predict_to_file` with what is written of the model's blended outputs chosen by ``select`` (array,
    dtype, nodata, band names)."""
    out, fmt = check_output(output, overwrite, inputs=scene.inputs)
    check_scheduler(scheduler)
    info = model_info(model)
    values = predict_blocks(scene, model, tile=tile, overlap=overlap, blend=blend, batch_size=batch_size,
                            block_size=block_size, calls=threads.calls if threads and not threads.workers else None)
    array, dtype, nodata, names = select(values, info)
    meta = RasterMeta(scene.crs_wkt, output_transform(scene.transform, info.factor), names, dtype, nodata,
                      classes=info.classes, time=scene.time,
                      provenance=_provenance(scene, model, tile=tile, overlap=overlap, blend=blend))
    started = time.perf_counter()
    with writer_lock(out, "--output"):
        for stale in sweep_staging(out):  # a killed earlier predict's
            log.info("removed %s, the staging of an interrupted predict", stale)
        _write(array, scene, out, fmt, meta, info.factor, block_size, nodata, scheduler, progress, overwrite, threads)
    seconds = time.perf_counter() - started
    height, width = scene.shape
    return PredictResult(out, fmt, (int(array.shape[0]), int(array.shape[1]), int(array.shape[2])), _disk_size(out),
                         seconds, height * width)


def _provenance(scene: Scene, model: Any, **tiling: Any) -> dict[str, Any]:
    """What the output records of how it was made: the input(s), their bands and frames' times, the model, tiling."""
    found: dict[str, Any] = {"component": "gfm:predict", "input": scene.path, "input_bands": list(scene.bands)}
    if scene.frames > 1:
        found.update(inputs=scene.inputs, frames=scene.frames,
                     times=[None if t is None else str(t) for t in scene.times])
    return {**found, "model": type(model).__name__, **tiling}


def _write(array: Any, scene: Scene, out: Path, fmt: str, meta: RasterMeta, factor: int, block_size: int,
           nodata: float, scheduler: str, progress: bool, overwrite: bool, threads: PredictThreads | None) -> None:
    """Compute ``array`` block by block into a staging store, convert it (COG) and publish it as ``out``."""
    with staging(out, "tmp") as tmp, staging(out, "blocks.zarr") as blocks:
        store = tmp if fmt == "zarr" else blocks
        create_zarr(store, meta, tuple(array.shape), block_size // factor)
        writes = array.map_blocks(write_zarr_block, store=str(store), nodata=nodata, dtype=np.int64,
                                  chunks=((1,), (1,) * len(array.chunks[1]), (1,) * len(array.chunks[2])))
        dask_threads = threads.dask if threads is not None else None
        worker_torch = threads.torch if threads is not None and threads.workers else None
        if run_blocks(writes, scheduler, progress=progress, num_workers=dask_threads, worker_threads=worker_torch) == 0:
            raise PredictError(f"input {scene.path} has no valid pixel (every pixel is nodata or masked); "
                               f"nothing was written to {out}")
        finish_zarr(store)
        if fmt == "cog":
            zarr_to_cog(store, tmp, meta)
        publish(tmp, out, overwrite, inputs=scene.inputs)


def predict_to_vectors(scene: Scene, model: Any, output: str | Path, options: Any = None, *, tile: int = 64,
                       overlap: int = 16, blend: Blend = "cosine", batch_size: int = 16, block_size: int = 512,
                       scheduler: str = "threads", overwrite: bool = False, progress: bool = False,
                       threads: PredictThreads | None = None) -> Any:
    """Predict ``scene`` into polygons at ``output`` (.gpkg, .geojson, .fgb, .parquet): each pixel's class (as
    :func:`predict_to_file` writes the class map, with ``threads``) and its probability go to a staging Zarr store
    beside it, which is polygonized with each polygon's mean probability; returns the
    :class:`~registry_gfm.predict.VectorResult`."""
    from registry_gfm.predict._vectors import VectorOptions, check_vector_output, scored_grid, write_vectors

    started = time.perf_counter()
    options = options or VectorOptions(block_size=block_size)
    options.check()
    out, fmt = check_vector_output(output, overwrite, inputs=scene.inputs)
    info = model_info(model)
    if info.classes is None:
        raise PredictError(f"--output {output}: polygons need a class map, and the model writes values "
                           f"({', '.join(info.outputs[:3])}, ...); write a .tif or .zarr raster instead")
    with writer_lock(out, "--output"):
        for stale in sweep_staging(out):
            log.info("removed %s, the staging of an interrupted predict", stale)
    with staging(out, "probs") as folder:
        folder.mkdir()
        staged = folder / "classes.zarr"
        _predict_raster(scene, model, staged, lambda values, _: (class_and_score(values), "float32", float("nan"),
                                                                 ("class", "probability")),
                        tile=tile, overlap=overlap, blend=blend, batch_size=batch_size, block_size=block_size,
                        scheduler=scheduler, overwrite=False, progress=progress, threads=threads)
        result = write_vectors(scored_grid(staged, list(info.classes)), out, fmt, options, overwrite=overwrite,
                               inputs=scene.inputs)
    return dataclasses.replace(result, seconds=time.perf_counter() - started)  # the prediction's time too

