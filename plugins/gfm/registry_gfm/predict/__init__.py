"""The ``predict`` command's engine: run a tile model over a whole scene into a COG or a Zarr raster.

A global tile grid anchored at the scene origin, overlapping tiles blended with a cosine ramp, reflect
padding at the edges, and a dask graph of output blocks with halos: memory stays flat, any dask
scheduler runs it, and the output is bit-identical for any batch or block size. Imports numpy only;
dask, GDAL and torch load when used.
"""

from registry_gfm.errors import PredictError
from registry_gfm.predict._engine import (
    CLASS_NODATA,
    check_tiling,
    class_map,
    default_tiling,
    output_transform,
    predict_blocks,
)
from registry_gfm.predict._grid import BLENDS, Blend, TileGrid, blend_ramp, blend_window
from registry_gfm.predict._predict import PredictResult, check_scheduler, predict_to_file, predict_to_vectors
from registry_gfm.predict._run_adapters import (
    COMPUTE_BATCH,
    PatchEmbeddings,
    SegmentationProbabilities,
    TileClasses,
    load_run_model,
    pipeline_model,
)
from registry_gfm.predict._scene import Scene, check_scene, match_bands, parse_band_map, requested_names
from registry_gfm.predict._sinks import RasterMeta, check_output
from registry_gfm.predict._sources import open_scene
from registry_gfm.predict._threads import PredictThreads, choose_predict_threads, torch_threads
from registry_gfm.predict._tile_model import ModelInfo, TileModel, model_info
from registry_gfm.predict._vectors import (
    VECTOR_FORMATS,
    VectorOptions,
    VectorResult,
    check_vector_output,
    vectorize_file,
)

__all__ = [
    "BLENDS",
    "CLASS_NODATA",
    "COMPUTE_BATCH",
    "VECTOR_FORMATS",
    "Blend",
    "ModelInfo",
    "PatchEmbeddings",
    "PredictError",
    "PredictResult",
    "PredictThreads",
    "RasterMeta",
    "Scene",
    "SegmentationProbabilities",
    "TileClasses",
    "TileGrid",
    "TileModel",
    "VectorOptions",
    "VectorResult",
    "blend_ramp",
    "blend_window",
    "check_output",
    "check_scene",
    "check_scheduler",
    "check_tiling",
    "check_vector_output",
    "choose_predict_threads",
    "class_map",
    "default_tiling",
    "load_run_model",
    "match_bands",
    "model_info",
    "open_scene",
    "output_transform",
    "parse_band_map",
    "pipeline_model",
    "predict_blocks",
    "predict_to_file",
    "predict_to_vectors",
    "requested_names",
    "torch_threads",
    "vectorize_file",
]
