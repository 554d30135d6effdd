"""``POST /v1/predict``: a GeoTIFF window in the body, the prediction back as a GeoTIFF with its CRS and transform.

The window is written to a private temporary folder and predicted with :func:`~registry_gfm.predict.predict_to_file`
(the same tiling, blending and writer as ``predict``), one window at a time on a worker thread; at most
``--max-queue`` requests wait, more get 429. Options go in the query string: ``output`` (``classes``,
``probabilities`` or ``embeddings``), ``bands``, ``band_map``, ``tile``, ``overlap`` and ``blend``.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fastapi import Request  # at module level: FastAPI resolves the endpoint's annotations from here

from registry_core import RegistryCoreError, UsageError
from registry_core.serve import APIError, ServeContext, Served
from registry_gfm.errors import PredictError

__all__ = ["WindowPredictor", "imagery_server", "served_imagery"]

#: The media types ``/v1/predict`` reads and writes.
TIFF_TYPES: Final = ("image/tiff", "image/geotiff", "application/octet-stream")
OUTPUTS: Final = ("classes", "probabilities", "embeddings")
#: Query parameters ``/v1/predict`` knows (any other is refused by name).
PARAMS: Final = frozenset({"output", "bands", "band_map", "tile", "overlap", "blend"})


@dataclass(frozen=True)
class Window:
    """One request's options, checked."""

    output: str
    bands: tuple[str, ...] | None
    band_map: str | None
    tile: int
    overlap: int
    blend: str


class WindowPredictor:
    """An imagery run's tile models (its head's and its encoder's) and the window prediction they serve."""

    def __init__(self, run_dir: str | Path, *, max_pixels: int, tile: int | None = None, overlap: int | None = None,
                 device: str | None = None, compute_batch: int = 16) -> None:
        from registry_core import Pipeline
        from registry_gfm.predict import default_tiling, model_info, pipeline_model

        path = Path(run_dir)
        if not (path / "pipeline.toml").is_file():
            raise PredictError(f"run folder {run_dir} has no pipeline.toml; expected a folder written by run")
        pipeline = Pipeline.load(path)
        self.name = str(pipeline.name or path.resolve().name)
        self.created = int((path / "pipeline.toml").stat().st_mtime)
        self.max_pixels = max_pixels
        self.models: dict[str, Any] = {}
        if callable(getattr(pipeline.objective, "logits", None)):
            self.models["classes"] = pipeline_model(pipeline, device=device, name=f"run {run_dir}",
                                                    compute_batch=compute_batch)
        self.models["embeddings"] = pipeline_model(pipeline, embeddings=True, device=device, name=f"run {run_dir}",
                                                   compute_batch=compute_batch)
        self.default = "classes" if "classes" in self.models else "embeddings"
        info = model_info(self.models[self.default])
        if info.frames > 1:
            raise PredictError(f"run {run_dir} reads {info.frames} time steps per tile, and serve predicts one "
                               "GeoTIFF window (one time step); run `predict` with a datacube or one --input per "
                               "time step instead")
        self.bands, self.classes, self.physical = info.bands, info.classes, info.physical
        self.tile, self.overlap = default_tiling(info, tile, overlap)
        self._lock = threading.Lock()
        self.waiting = 0
        self.windows = 0

    def window(self, query: Mapping[str, str]) -> Window:
        """The request's options from its query string (APIError 400 naming a bad one)."""
        unknown = sorted(set(query) - PARAMS)
        if unknown:
            raise APIError(400, f"unknown parameter {unknown[0]!r}; expected some of {', '.join(sorted(PARAMS))}",
                           param=unknown[0], code="invalid_value")
        output = query.get("output", self.default)
        if output not in OUTPUTS:
            raise APIError(400, f"output: expected one of {', '.join(OUTPUTS)}, got {output!r}", param="output",
                           code="invalid_value")
        if output != "embeddings" and "classes" not in self.models:
            raise APIError(400, f"output={output}: model '{self.name}' has no head (it gives no classes); ask for "
                           "output=embeddings", param="output", code="invalid_value")

        def whole(name: str, default: int) -> int:
            text = query.get(name)
            if text is None:
                return default
            if not text.isdigit():
                raise APIError(400, f"{name}: expected a whole number of pixels, got {text!r}", param=name,
                               code="invalid_value")
            return int(text)

        bands = tuple(b.strip() for b in query["bands"].split(",")) if query.get("bands") else None
        blend = query.get("blend", "cosine")
        return Window(output, bands, query.get("band_map"), whole("tile", self.tile), whole("overlap", self.overlap),
                      blend)

    def predict(self, body: bytes, window: Window) -> tuple[bytes, int]:
        """The GeoTIFF ``predict`` writes for the GeoTIFF ``body``, and the window's pixels (PredictError / APIError
        for bad input)."""
        import rasterio
        from rasterio.errors import RasterioIOError

        from registry_gfm.predict import (
            check_tiling,
            model_info,
            open_scene,
            parse_band_map,
            predict_to_file,
            requested_names,
        )

        model = self.models["embeddings" if window.output == "embeddings" else "classes"]
        info = model_info(model)
        check_tiling(info, tile=window.tile, overlap=window.overlap, blend=window.blend, batch_size=16,
                     block_size=512)
        with self._lock, tempfile.TemporaryDirectory(prefix="registry-core-serve-") as folder:
            source = Path(folder) / "window.tif"
            source.write_bytes(body)
            try:
                with rasterio.open(source) as ds:
                    height, width, driver = ds.height, ds.width, ds.driver
            except RasterioIOError:
                raise APIError(400, "the body is not a GeoTIFF GDAL can read", param="body",
                               code="invalid_image") from None
            if driver != "GTiff":
                raise APIError(400, f"the body is a {driver} raster; expected a GeoTIFF", param="body",
                               code="invalid_image")
            if height * width > self.max_pixels:
                raise APIError(413, f"the window is {width} x {height} = {height * width} px; at most "
                               f"{self.max_pixels} are accepted (--max-pixels)", param="body", code="window_too_large")
            scene = open_scene(source, requested_names(info.bands, parse_band_map(window.band_map)),
                               names=window.bands, physical=info.physical)
            out = predict_to_file(scene, model, Path(folder) / "prediction.tif", tile=window.tile,
                                  overlap=window.overlap, blend=window.blend,  # type: ignore[arg-type]
                                  probabilities=window.output == "probabilities", scheduler="synchronous")
            self.windows += 1
            return out.output.read_bytes(), height * width


def served_imagery(predictor: WindowPredictor, *, max_queue: int, body_limit: int | None = None) -> Served:
    """``predictor`` as the core's :class:`~registry_core.serve.Served`, with its ``/v1/predict`` route."""

    def install(app: Any, context: ServeContext) -> None:
        from fastapi.concurrency import run_in_threadpool
        from fastapi.responses import Response
        from prometheus_client import Counter, Gauge, Histogram

        metrics = context.metrics
        pixels = Counter("registry_core_predicted_pixels", "input pixels predicted", registry=metrics)
        seconds = Histogram("registry_core_predict_seconds", "time to predict one window", registry=metrics,
                            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        Gauge("registry_core_queue_depth", "windows waiting for the model", registry=metrics).set_function(
            lambda: predictor.waiting)

        @app.post("/v1/predict")
        async def predict(request: Request) -> Response:
            window = predictor.window(dict(request.query_params))
            body = await context.body(request, TIFF_TYPES)
            if predictor.waiting >= max_queue:
                raise APIError(429, f"the server is busy: {max_queue} windows are waiting; retry shortly",
                               type="rate_limit_error", code="queue_full", headers={"Retry-After": "1"})
            predictor.waiting += 1
            started = time.monotonic()
            try:
                tiff, count = await run_in_threadpool(predictor.predict, body, window)
            except PredictError as exc:
                raise APIError(400, str(exc), code="invalid_value") from None
            finally:
                predictor.waiting -= 1
            seconds.observe(time.monotonic() - started)
            pixels.inc(count)
            return Response(tiff, media_type="image/tiff")

    return Served(name=predictor.name, install=install, created=predictor.created, body_limit=body_limit,
                  health=lambda: {"queue": predictor.waiting, "windows": predictor.windows},
                  about=f"POST /v1/predict: {predictor.default} of at most {predictor.max_pixels} px per window")


def imagery_server(target: str, args: argparse.Namespace) -> Served:
    """``serve``'s server for the imagery modality: a run folder's head (or encoder) behind ``/v1/predict``."""
    if args.max_pixels < 1:
        raise UsageError(f"--max-pixels must be >= 1, got {args.max_pixels}")
    if args.tile is not None and args.tile < 1:
        raise UsageError(f"--tile must be >= 1, got {args.tile}")
    if args.overlap is not None and args.overlap < 0:
        raise UsageError(f"--overlap must be >= 0, got {args.overlap}")
    if not Path(target).is_dir():
        raise RegistryCoreError(f"{target} is an imagery card; serve predicts with a run folder (finetune the card "
                                "into a run first)")
    predictor = WindowPredictor(target, max_pixels=args.max_pixels, tile=args.tile, overlap=args.overlap,
                                device=args.device)
    if args.name:
        predictor.name = args.name
    # the body holds the window's bands (the model's and a few more) as float32 at most, plus the GeoTIFF's header
    limit = args.max_pixels * (len(predictor.bands) + 2) * 4 + (1 << 20)
    return served_imagery(predictor, max_queue=args.max_queue, body_limit=limit)
