"""Tile models from a run folder (``run X.toml --out DIR``): a segmentation head's class probabilities, a
classification head's (one per chip), or the encoder's patch embeddings.

Both normalise tiles as the run's data source normalised its chips (``data.normalization()``: the
per-band mean / std, in physical units when the run scaled its data) and zero the invalid pixels, then
run in float32 under ``torch.inference_mode`` on the chosen device.

The network always sees ``compute_batch`` tiles at a time (the last group padded with zero tiles):
convolution and matmul kernels pick their algorithm by batch size, so a tile's output would otherwise
change in its last bits with ``--batch-size``. A tile's output does not depend on the other tiles of its
group or its place in it, so the map is bit-identical for every ``--batch-size``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from registry_gfm.errors import PredictError
from registry_gfm.predict._engine import MAX_TILES_PER_CALL

__all__ = ["COMPUTE_BATCH", "PatchEmbeddings", "SegmentationProbabilities", "TileClasses", "load_run_model",
           "pipeline_model"]

#: Tiles per network forward pass, whatever ``--batch-size`` groups (see the module docstring).
COMPUTE_BATCH = 16


class _Normalised:
    """The shared half of both adapters: bands, normalisation and the device."""

    def __init__(self, norm: Mapping[str, Any], device: str, compute_batch: int = COMPUTE_BATCH,
                 frames: int = 1) -> None:
        if not 1 <= compute_batch <= MAX_TILES_PER_CALL:
            raise PredictError(f"--compute-batch {compute_batch} must be between 1 and {MAX_TILES_PER_CALL} tiles")
        self.compute_batch = compute_batch
        #: Time steps per tile: tiles hold ``frames`` x bands channels, frame by frame.
        self.frames = frames
        self.bands = [str(b) for b in norm["bands"]]
        self._mean = np.asarray(norm["mean"], np.float32)[None, :, None, None]
        self._std = np.asarray(norm["std"], np.float32)[None, :, None, None]
        #: Whether tiles must be in physical units (the run scaled its data), else the stored numbers.
        self.physical = bool(norm.get("apply_scale", True))
        self.device = device

    def chips(self, tiles: np.ndarray, valid: np.ndarray) -> Any:
        """(B, C, H, W) float32 tensor on the device, (B, C, T, H, W) for a model of frames: normalised, 0 where
        not valid (as in training: a frame's invalid pixels are NaN in it)."""
        import torch

        b, _, height, width = tiles.shape
        x = tiles.reshape(b, self.frames, -1, height, width)  # (B, T, C, H, W)
        usable = valid[:, None, None] & np.isfinite(x)
        # where() and not a product: an invalid pixel may hold NaN or inf, and NaN * 0 is NaN
        x = np.where(usable, (x - self._mean[:, None]) / self._std[:, None], 0.0)
        x = x[:, 0] if self.frames == 1 else x.transpose(0, 2, 1, 3, 4)
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)

    def run(self, fn: Any, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """``fn(chips) -> (b, K, h, w)`` over the tiles in groups of exactly ``compute_batch`` (zero-padded)."""
        import torch

        n, m = tiles.shape[0], self.compute_batch
        outs = []
        with torch.inference_mode():
            for start in range(0, n, m):
                x = self.chips(tiles[start:start + m], valid[start:start + m])
                if x.shape[0] < m:
                    x = torch.cat([x, x.new_zeros((m - x.shape[0], *x.shape[1:]))])
                outs.append(fn(x)[: min(m, n - start)].float().cpu().numpy())
        out: np.ndarray = np.concatenate(outs)
        return out


class SegmentationProbabilities(_Normalised):
    """Per-class probabilities (softmax of ``objective.logits(parts, chips)``) at pixel resolution."""

    factor = 1

    def __init__(self, objective: Any, parts: Any, norm: Mapping[str, Any], *, patch: int, device: str,
                 classes: Sequence[str] | None = None, compute_batch: int = COMPUTE_BATCH, frames: int = 1) -> None:
        super().__init__(norm, device, compute_batch, frames)
        self.objective, self.parts = objective, parts
        self.channels = int(objective.num_classes)
        self.multiple = patch
        self.classes = list(classes) if classes is not None else [f"class_{i}" for i in range(self.channels)]

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        import torch

        return self.run(lambda x: torch.softmax(self.objective.logits(self.parts, x).float(), dim=1), tiles, valid)


class TileClasses(_Normalised):
    """A classification run's per-class probabilities, one output pixel per ``chip`` x ``chip`` input pixels: each
    tile is cut into chips of the size the classifier was trained on, and each chip gets its own class."""

    def __init__(self, objective: Any, parts: Any, norm: Mapping[str, Any], *, chip: int, patch: int, device: str,
                 classes: Sequence[str] | None = None, compute_batch: int = COMPUTE_BATCH, frames: int = 1) -> None:
        super().__init__(norm, device, compute_batch, frames)
        if chip % patch:
            raise PredictError(f"classification chips of {chip} px are not a multiple of the patch size {patch}")
        self.objective, self.parts = objective, parts
        self.channels = int(objective.num_classes)
        self.factor = self.multiple = chip
        self.classes = list(classes) if classes is not None else [f"class_{i}" for i in range(self.channels)]

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        import torch

        b, c, height, width = tiles.shape
        k, gh, gw = self.factor, height // self.factor, width // self.factor
        chips = tiles.reshape(b, c, gh, k, gw, k).transpose(0, 2, 4, 1, 3, 5).reshape(b * gh * gw, c, k, k)
        masks = valid.reshape(b, gh, k, gw, k).transpose(0, 1, 3, 2, 4).reshape(b * gh * gw, k, k)
        probs = self.run(lambda x: torch.softmax(self.objective.logits(self.parts, x).float(), dim=1), chips, masks)
        return np.ascontiguousarray(probs.reshape(b, gh, gw, self.channels).transpose(0, 3, 1, 2))


class PatchEmbeddings(_Normalised):
    """The encoder's patch tokens as a (B, D, H / p, W / p) feature map (prefix tokens dropped, band groups
    averaged)."""

    def __init__(self, parts: Any, norm: Mapping[str, Any], *, device: str, compute_batch: int = COMPUTE_BATCH,
                 frames: int = 1) -> None:
        from registry_gfm.encoder import ImageEncoder

        super().__init__(norm, device, compute_batch, frames)
        self.encoder = ImageEncoder(parts.embed, parts.positional, parts.backbone).to(device).eval()
        self.factor = self.multiple = self.encoder.patch_size
        self.channels = int(parts.embed.embed_dim)

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray:
        _, _, height, width = tiles.shape
        gh, gw = height // self.factor, width // self.factor

        def grid(x: Any) -> Any:
            tokens = self.encoder(x)[:, self.encoder.num_prefix_tokens :]  # (B, G·N, D)
            groups = tokens.shape[1] // (gh * gw)
            features = tokens.reshape(x.shape[0], groups, gh, gw, -1).float().mean(dim=1)  # (B, gh, gw, D)
            return features.permute(0, 3, 1, 2).contiguous()

        return self.run(grid, tiles, valid)


def _device(device: str | None) -> str:
    """``device``, checked here (a name torch knows, and a device this machine has); None: cuda when there is one."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise PredictError(f"--device {device!r} is not a device name; expected cpu, cuda, cuda:N or mps") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(kind, False):
        raise PredictError(f"--device {device!r}: this machine has no {kind} device; use --device cpu")
    return device


def pipeline_model(pipeline: Any, *, embeddings: bool = False, device: str | None = None, name: str = "run",
                   compute_batch: int = COMPUTE_BATCH) -> Any:
    """The tile model of a built pipeline: patch embeddings, or the segmentation head's probabilities."""
    data, objective, parts = pipeline.data, pipeline.objective, pipeline.parts
    normalization = getattr(data, "normalization", None)
    if not callable(normalization):
        raise PredictError(f"{name}: its data source {type(data).__name__} has no normalization(); predict needs "
                           "the per-band mean / std the model was trained with")
    frames = int(getattr(getattr(data, "config", None), "frames", 1) or 1)
    norm = normalization()
    where = _device(device)
    patch = int(getattr(parts.embed, "patch", 1))
    pipeline.model.to(where).eval()
    if embeddings:
        return PatchEmbeddings(parts, norm, device=where, compute_batch=compute_batch, frames=frames)
    if not callable(getattr(objective, "logits", None)):
        raise PredictError(f"{name} has no head: its objective {type(objective).__name__} gives no class logits; "
                           "pass --embeddings to write the encoder's patch embeddings instead")
    classes = getattr(objective, "class_names", None) or getattr(data, "class_names", None) or None
    if getattr(objective, "task", None) == "classification":
        chip = int(getattr(getattr(data, "config", None), "chip_size", 0) or 0)
        if chip < 1:
            raise PredictError(f"{name}: a classification run's data source must say its chip_size (the tile one "
                               "class is given for)")
        return TileClasses(objective, parts, norm, chip=chip, patch=patch, device=where, classes=classes,
                           compute_batch=compute_batch, frames=frames)
    return SegmentationProbabilities(objective, parts, norm, patch=patch, device=where, classes=classes,
                                     compute_batch=compute_batch, frames=frames)


def load_run_model(run_dir: str | Path, *, embeddings: bool = False, device: str | None = None,
                   compute_batch: int = COMPUTE_BATCH) -> Any:
    """The tile model of the run saved in ``run_dir`` (``pipeline.toml`` + ``model.safetensors`` + lock)."""
    from registry_core import Pipeline

    path = Path(run_dir)
    if not (path / "pipeline.toml").is_file():
        raise PredictError(f"run folder {run_dir} has no pipeline.toml; expected a folder written by "
                           "`python -m registry_core run X.toml --out DIR`")
    return pipeline_model(Pipeline.load(path), embeddings=embeddings, device=device, name=f"run {run_dir}",
                          compute_batch=compute_batch)
