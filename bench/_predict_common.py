"""Shared parts of the ``predict`` benchmarks: the seg-tiny-sized run folder, synthetic scenes, peak RSS, children.

- :func:`make_run` saves the ``seg-tiny`` recipe's pipeline with random weights (no ``[weights]``, no
  ``[evaluators]``, per-band mean / std pinned so nothing reads the datacube's statistics) as a run folder,
  exactly what ``python -m registry_core predict RUN_DIR`` loads. The recipe's store and label paths need
  not exist: ``build(prepare=False)`` does not open them and ``normalization()`` answers from the config.
- :func:`make_scene` writes a 6-band uint16 GeoTIFF (EPSG:32633, 30 m, deflate, 512-pixel tiles, band
  descriptions and scale 1e-4 so the stored numbers are reflectances x 10^4) block by block: a smooth random
  texture of value-noise octaves, correlated across bands, plus a little per-pixel noise. Writing an 8192^2
  scene needs a few tens of MB, not the scene's 805 MB.
- :data:`OURS_CHILD` runs what the ``predict`` command runs (``load_run_model``, ``open_scene``, the thread plan of
  ``choose_predict_threads`` for the scene's blocks, ``predict_to_file``) in a fresh interpreter and prints one
  JSON line with its own peak RSS (VmHWM).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

BANDS = ("blue", "green", "red", "nir08", "swir16", "swir22")
#: Mean / std of each band in reflectance (physical units: the scene's scale 1e-4 applied), Landsat-like.
MEAN = (0.06, 0.09, 0.10, 0.26, 0.21, 0.13)
STD = (0.03, 0.035, 0.045, 0.07, 0.06, 0.05)
SCALE = 1e-4
#: Value-noise octaves of the texture: (cell size in pixels, amplitude).
OCTAVES = ((512, 1.0), (128, 0.5), (32, 0.25), (8, 0.12))
BLOCK = 512


def run_config() -> dict[str, Any]:
    """The ``seg-tiny`` recipe config as a random-weight pipeline that needs no datacube."""
    from registry_gfm.recipes.seg_tiny import SegTiny

    config = SegTiny().config()
    config.pop("weights")
    config.pop("evaluators")
    config["data"].update(mean=list(MEAN), std=list(STD), bands=list(BANDS))
    return config


def make_run(folder: Path) -> Path:
    """The seg-tiny-sized run folder (pipeline.toml, model.safetensors, lock) under ``folder``; reused if there."""
    import torch

    import registry_core

    run = folder / "seg-tiny-random"
    if (run / "pipeline.toml").is_file():
        return run
    torch.manual_seed(0)
    pipeline = registry_core.compose(run_config()).build(prepare=False)
    # the lock records the data source's fingerprint, which opens the recipe's datacube: there is none here
    vars(pipeline)["data_fingerprint"] = lambda: None
    pipeline.save(run)
    return run


def _octave_grids(size: int, seed: int) -> list[list[np.ndarray]]:
    """Per latent field, per octave: the random lattice values (one more cell than the scene, plus one)."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal((size // cell + 2, size // cell + 2)).astype(np.float32) for cell, _ in OCTAVES]
            for _ in range(3)]


def _axis(lo: int, n: int, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Lattice index and smoothstep weight of pixels lo .. lo + n along one axis."""
    pos = (np.arange(lo, lo + n, dtype=np.float32) + 0.5) / cell
    index = np.floor(pos).astype(np.int64)
    t = pos - index
    return index, t * t * (3 - 2 * t)


def _texture(grids: list[np.ndarray], rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """One latent field over a window: the sum of the octaves, bilinear (smoothstep) lattice interpolation."""
    out = np.zeros((rows[1] - rows[0], cols[1] - cols[0]), np.float32)
    for grid, (cell, amp) in zip(grids, OCTAVES):
        iy, ty = _axis(rows[0], out.shape[0], cell)
        ix, tx = _axis(cols[0], out.shape[1], cell)
        a, b = grid[np.ix_(iy, ix)], grid[np.ix_(iy, ix + 1)]
        c, d = grid[np.ix_(iy + 1, ix)], grid[np.ix_(iy + 1, ix + 1)]
        top = a + (b - a) * tx[None]
        bottom = c + (d - c) * tx[None]
        out += amp * (top + (bottom - top) * ty[:, None])
    return out


def make_scene(folder: Path, size: int, seed: int = 0) -> Path:
    """``scene_{size}.tif`` under ``folder``: 6 x size x size uint16, written block by block; reused if there."""
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    path = folder / f"scene_{size}.tif"
    if path.is_file():
        return path
    fields = _octave_grids(size, seed)
    rng = np.random.default_rng(seed + 1)
    mixing = rng.uniform(-1, 1, (len(BANDS), 3)).astype(np.float32)  # bands share the latent fields
    mixing /= np.linalg.norm(mixing, axis=1, keepdims=True)
    partial = path.with_suffix(".partial.tif")
    profile = {"driver": "GTiff", "dtype": "uint16", "count": len(BANDS), "width": size, "height": size,
               "crs": "EPSG:32633", "transform": Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 5000000.0),
               "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate", "predictor": 2,
               "interleave": "pixel", "BIGTIFF": "IF_SAFER"}
    mean, std = np.asarray(MEAN, np.float32)[:, None, None], np.asarray(STD, np.float32)[:, None, None]
    with rasterio.open(partial, "w", **profile) as dst:
        for b, name in enumerate(BANDS, start=1):
            dst.set_band_description(b, name)
        dst.scales = (SCALE,) * len(BANDS)
        dst.offsets = (0.0,) * len(BANDS)
        for r in range(0, size, BLOCK):
            for c in range(0, size, BLOCK):
                rows, cols = (r, min(r + BLOCK, size)), (c, min(c + BLOCK, size))
                latent = np.stack([_texture(g, rows, cols) for g in fields])  # (3, h, w), std about 1.2
                z = np.tensordot(mixing, latent, axes=1) / 1.2
                z += rng.normal(0, 0.1, z.shape).astype(np.float32)
                dn = np.clip((mean + std * z) / SCALE, 1, 65535).astype(np.uint16)
                dst.write(dn, window=Window(cols[0], rows[0], cols[1] - cols[0], rows[1] - rows[0]))
    partial.rename(path)
    return path


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB: VmHWM (ru_maxrss on Linux survives fork + exec; VmHWM does not)."""
    import resource

    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def linear_head(model: Any) -> None:
    """Swap the ViT of a loaded ``SegmentationProbabilities`` for a seeded per-pixel linear map of the normalised
    bands (B, 6, h, w) -> (B, 7, h, w): the memory-only rows, where the tiling, reading, blending and writing are
    measured with a model that costs next to nothing (both sides get the same one)."""
    import torch

    weight = torch.randn(model.channels, len(model.bands), generator=torch.Generator().manual_seed(0))
    model.objective.logits = lambda parts, x: torch.einsum("kc,bchw->bkhw", weight, x)


#: ``predict`` in a fresh interpreter: what the CLI's handler does (``opts["threads"]`` is its ``--threads``: the
#: threads are chosen by ``choose_predict_threads`` from the scene's blocks, torch's set for the prediction and the
#: plan handed to ``predict_to_file``), timed in parts, and the peak RSS.
OURS_CHILD = """
import json, math, sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[2])
from _predict_common import linear_head, peak_rss_mb
opts = json.loads(sys.argv[1])
import torch
import dask.array, rasterio, tqdm, zarr  # one-time imports are not predict time
try:
    import distributed  # dask's get_scheduler imports it on the first compute when installed
except ImportError:
    pass
from registry_gfm.predict import (choose_predict_threads, load_run_model, model_info, open_scene, predict_to_file,
                                  predict_to_vectors, requested_names, torch_threads)
choose_predict_threads(opts["threads"] or None, opts["scheduler"])  # as the command: a bad --threads fails first
if opts["output"].endswith(".gpkg"):  # the polygon path's one-time imports, as the raster path's above
    import pyarrow, pyogrio.raw, pyproj, scipy.ndimage, scipy.sparse.csgraph, shapely
model = load_run_model(opts["run"], device=opts["device"])
if opts.get("linear_head"):
    linear_head(model)
info = model_info(model)
ready = time.perf_counter()
base = peak_rss_mb()
runs = []
plan = None
for i in range(opts["warmup"] + opts["repeats"]):
    t0 = time.perf_counter()
    scene = open_scene(opts["input"], requested_names(info.bands, {}), physical=info.physical)
    height, width = scene.shape
    blocks = math.ceil(height / opts["block_size"]) * math.ceil(width / opts["block_size"])
    plan = choose_predict_threads(opts["threads"] or None, opts["scheduler"], blocks=blocks)
    write = predict_to_vectors if opts["output"].endswith(".gpkg") else predict_to_file
    with torch_threads(plan.torch if plan is not None else None):
        result = write(scene, model, opts["output"], tile=opts["tile"], overlap=opts["overlap"],
                       batch_size=opts["batch_size"], block_size=opts["block_size"],
                       scheduler=opts["scheduler"], overwrite=True, progress=opts["progress"], threads=plan)
    if i >= opts["warmup"]:
        runs.append({"seconds": time.perf_counter() - t0, "predict_seconds": result.seconds,
                     "size": getattr(result, "size", 0), "features": getattr(result, "features", None)})
    print(result.summary(), file=sys.stderr, flush=True)
print(json.dumps({"runs": runs, "startup_seconds": ready - start, "rss_after_load_mb": base,
                  "peak_rss_mb": peak_rss_mb(), "threads": plan.as_dict() if plan is not None else None}))
"""


def run_child(code: str, opts: dict[str, Any]) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter with ``opts`` (JSON) and this folder on its path; its last stdout line."""
    out = subprocess.run([sys.executable, "-c", code, json.dumps(opts), str(Path(__file__).resolve().parent)],
                         check=True, stdout=subprocess.PIPE, text=True)  # stderr (progress) passes through
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def tiled_inference_file(path: str | None) -> Path:
    """TerraTorch's ``tasks/tiled_inference.py``: under ``path`` (a site folder holding ``terratorch/``, the
    package folder, or the file itself), else where ``terratorch`` is installed (found, not imported)."""
    import importlib.util

    if path:
        p = Path(path)
        for candidate in (p, p / "terratorch" / "tasks" / "tiled_inference.py", p / "tasks" / "tiled_inference.py"):
            if candidate.is_file():
                return candidate
        raise ImportError(f"no terratorch/tasks/tiled_inference.py under {path}")
    spec = importlib.util.find_spec("terratorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("terratorch is not installed (pip install --target DIR terratorch --no-deps, then pass "
                          "--terratorch-path DIR or set TERRATORCH_PATH)")
    return Path(next(iter(spec.submodule_search_locations))) / "tasks" / "tiled_inference.py"


def load_tiled_inference(path: str | None) -> tuple[Any, str]:
    """TerraTorch's ``tiled_inference`` function and where it came from, loaded from its file alone.

    The package's ``__init__`` imports all of TerraTorch (lightning, torchvision, timm, ...); the module needs
    only torch and tqdm, and imports ``terratorch.models.utils.pad_images`` (which pulls in torchvision) without
    using it. So the file is executed as a standalone module, with that one name stubbed when the real
    ``terratorch.models.utils`` cannot be imported; the stub raises if it is ever called.
    """
    import importlib.util
    import types

    file = tiled_inference_file(path)
    source = file.read_text()
    if "def tiled_inference(" not in source:
        raise ImportError(f"{file} has no tiled_inference function")
    version = next((d.name.removeprefix("terratorch-").removesuffix(".dist-info")
                    for d in sorted(file.parents[2].glob("terratorch-*.dist-info"))), "unknown version")
    names = ("terratorch", "terratorch.models", "terratorch.models.utils")
    saved = {n: sys.modules.get(n) for n in names}
    stubbed = False
    try:
        importlib.import_module("terratorch.models.utils")
    except Exception:  # any failure of the real package (missing torchvision, lightning, ...)
        if source.count("pad_images") > 1:
            raise ImportError(f"{file} uses terratorch.models.utils.pad_images, which cannot be imported here") from None

        def pad_images(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("stub of terratorch.models.utils.pad_images (not importable here)")

        for n in names:
            sys.modules[n] = types.ModuleType(n)
        vars(sys.modules["terratorch.models.utils"])["pad_images"] = pad_images
        stubbed = True
    try:
        spec = importlib.util.spec_from_file_location("terratorch_tiled_inference", file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if stubbed:
            for n, m in saved.items():
                if m is None:
                    sys.modules.pop(n, None)
                else:
                    sys.modules[n] = m
    how = "loaded by file path, its unused pad_images import stubbed" if stubbed else "loaded by file path"
    return module.tiled_inference, f"TerraTorch {version} tiled_inference ({file}; {how})"


#: TerraTorch's ``tiled_inference`` in a fresh interpreter, on the whole scene read and normalised in memory.
THEIRS_CHILD = """
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[2])
from _predict_common import linear_head, load_tiled_inference, peak_rss_mb
opts = json.loads(sys.argv[1])
import numpy as np, rasterio, torch
if opts["threads"]:
    torch.set_num_threads(opts["threads"])
from registry_gfm.predict import load_run_model
tiled_inference, origin = load_tiled_inference(opts["terratorch"])
model = load_run_model(opts["run"], device=opts["device"])  # the same SegmentationProbabilities as predict
if opts.get("linear_head"):
    linear_head(model)
mean, std = model._mean[0], model._std[0]  # (C, 1, 1): the run's normalisation, as predict applies it
ready = time.perf_counter()
base = peak_rss_mb()
t0 = time.perf_counter()
with rasterio.open(opts["input"]) as src:  # the whole scene in memory, normalised in place as model.chips does
    x = src.read(out_dtype="float32")
    valid = (src.read_masks() > 0).all(axis=0)
    x *= np.asarray(src.scales, np.float32)[:, None, None]
    x += np.asarray(src.offsets, np.float32)[:, None, None]
x -= mean
x /= std
x *= valid
scene = torch.from_numpy(x)[None]  # (1, C, H, W), no copy
read_seconds = time.perf_counter() - t0
tiles = 0

def forward(batch):
    global tiles
    tiles += batch.shape[0]
    return torch.softmax(model.objective.logits(model.parts, batch).float(), dim=1)

t0 = time.perf_counter()
with torch.inference_mode():
    probs = tiled_inference(forward, scene, crop=opts["tile"], stride=opts["tile"] - opts["overlap"],
                            delta=opts["delta"], padding=opts["padding"], batch_size=opts["batch_size"],
                            blend_overlaps=True, average_patches=True, verbose=opts["progress"])
    classes = probs[0].argmax(dim=0).to(torch.uint8).numpy()
infer_seconds = time.perf_counter() - t0
np.save(opts["classes"], classes)
print(json.dumps({"read_seconds": read_seconds, "infer_seconds": infer_seconds, "tiles": tiles, "origin": origin,
                  "startup_seconds": ready - start, "rss_after_load_mb": base, "peak_rss_mb": peak_rss_mb(),
                  "threads": torch.get_num_threads()}))
"""
