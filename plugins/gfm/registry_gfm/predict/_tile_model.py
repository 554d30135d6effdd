"""What ``predict`` runs: a tile model (numpy in, numpy out) and the check of its attributes up front."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from registry_gfm.errors import PredictError

__all__ = ["ModelInfo", "TileModel", "model_info"]


@runtime_checkable
class TileModel(Protocol):
    """A model the deployment engine can tile a scene with.

    ``model(tiles, valid)``: ``tiles`` float32 (B, C, tile, tile) in the bands ``bands`` (physical units,
    ``dn * scale + offset``, unless the model sets ``physical = False`` for the stored numbers), ``valid``
    bool (B, tile, tile); a model of ``frames`` time steps gets C = frames x bands channels, frame by frame (a
    pixel not valid in one frame is NaN there, and ``valid`` says where any frame is); returns float32 (B, channels, tile / factor, tile / factor). The model
    normalises its own input. Each tile's output must depend on that tile alone (not on the other tiles
    of its batch): then ``predict`` is bit-identical for every batch size, block size and scheduler.

    Optional attributes, read with defaults: ``classes`` (names of the classes when the outputs are
    per-class probabilities: the engine blends them and takes the argmax; default None, outputs are
    values), ``outputs`` (names of the output channels), ``physical`` (default True), ``frames`` (time steps per
    tile, default 1).
    """

    #: Input band names, in the order of the tiles' channels.
    bands: Sequence[str]
    #: Output channels K.
    channels: int
    #: Input pixels per output pixel along each axis: 1 for per-pixel maps, the patch size for embeddings.
    factor: int
    #: The tile size must be a multiple of this (e.g. the patch size of a ViT).
    multiple: int

    def __call__(self, tiles: np.ndarray, valid: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelInfo:
    """A tile model's attributes, checked: what the engine and the writers need to know about it."""

    bands: tuple[str, ...]
    channels: int
    factor: int
    multiple: int
    #: Class names when the outputs are per-class probabilities, else None.
    classes: tuple[str, ...] | None
    #: Output channel names (class names, ``feature_0`` ..., or the model's ``outputs``).
    outputs: tuple[str, ...]
    #: Whether tiles are in physical units (else the stored numbers).
    physical: bool
    #: Time steps per tile: the tiles hold ``frames`` x ``len(bands)`` channels, frame by frame.
    frames: int = 1


def _positive_int(model: Any, name: str) -> int:
    value = getattr(model, name, None)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise PredictError(f"model {type(model).__name__}: attribute {name!r} should be a positive integer, "
                           f"got {value!r}")
    return int(value)


def model_info(model: Any) -> ModelInfo:
    """Check ``model`` has the attributes of a :class:`TileModel` (every problem named) and read them."""
    name = type(model).__name__
    if not callable(model):
        raise PredictError(f"model {name} is not callable; expected model(tiles, valid) -> outputs")
    bands = getattr(model, "bands", None)
    if isinstance(bands, str) or not isinstance(bands, Sequence) or not bands \
            or not all(isinstance(b, str) for b in bands):
        raise PredictError(f"model {name}: attribute 'bands' should be a non-empty list of band names, got {bands!r}")
    channels, factor, multiple = (_positive_int(model, n) for n in ("channels", "factor", "multiple"))
    classes = getattr(model, "classes", None)
    if classes is not None:
        classes = tuple(str(c) for c in classes)
        if len(classes) != channels:
            raise PredictError(f"model {name}: {len(classes)} class names for {channels} output channels")
        if channels > 255:
            raise PredictError(f"model {name}: {channels} classes do not fit a uint8 class map (at most 255)")
    outputs = getattr(model, "outputs", None)
    if outputs is None:
        outputs = classes if classes is not None else tuple(f"feature_{i}" for i in range(channels))
    outputs = tuple(str(o) for o in outputs)
    if len(outputs) != channels:
        raise PredictError(f"model {name}: {len(outputs)} output names for {channels} output channels")
    frames = _positive_int(model, "frames") if getattr(model, "frames", None) is not None else 1
    return ModelInfo(tuple(bands), channels, factor, multiple, classes, outputs,
                     bool(getattr(model, "physical", True)), frames)
