"""An input scene as ``predict`` sees it: lazy pixels in the model's band order, a valid mask and a georeference.

Also the band rules every input shares: ``--band-map`` parsing and matching the model's bands to the
input's by identity (``registry_gfm.bands``: ``B8A`` is ``nir08``), so a missing band is an error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from registry_gfm.bands import band_key, normalize_name
from registry_gfm.errors import PredictError
from registry_gfm.ingest.plan import MAX_GRID_PIXELS

__all__ = ["MAX_SCENE_PIXELS", "Scene", "check_scene", "match_bands", "parse_band_map", "requested_names"]

#: Most pixels one prediction covers: an ingest's grid bound (65536 x 65536).
MAX_SCENE_PIXELS = MAX_GRID_PIXELS


@dataclass(frozen=True)
class Scene:
    """One georeferenced scene, read lazily: nothing is read until its dask arrays are computed."""

    #: The input path, for messages.
    path: str
    #: dask array (bands, y, x) float32, in the model's band order (physical units unless read raw).
    image: Any
    #: dask array (y, x) bool, True where every band is usable.
    valid: Any
    #: The input's names of the bands in ``image``.
    bands: tuple[str, ...]
    crs_wkt: str
    #: Affine pixel-to-CRS transform (a, b, c, d, e, f) of pixel (0, 0)'s corner.
    transform: tuple[float, float, float, float, float, float]
    #: Acquisition time, when the input says (datacube time step, STAC item datetime); of the last frame.
    time: np.datetime64 | None = None
    #: Time steps in ``image``: it holds ``frames`` x ``len(bands)`` channels, frame by frame, where a pixel not
    #: valid in one frame is NaN there (``valid`` then says where any frame is).
    frames: int = 1
    #: Every input file or store the scene reads (default: ``path`` alone).
    sources: tuple[str, ...] = ()
    #: Each frame's acquisition time (None where unknown), when the scene has several.
    times: tuple[np.datetime64 | None, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[2])

    @property
    def inputs(self) -> list[str]:
        """The paths this scene reads (an output must not replace any of them)."""
        return list(self.sources or (self.path,))


def parse_band_map(text: str | None) -> dict[str, str]:
    """``"b1=blue,b2=green"`` -> ``{"b1": "blue", "b2": "green"}`` (input band -> model band)."""
    if not text:
        return {}
    out: dict[str, str] = {}
    for pair in text.split(","):
        src, sep, dst = pair.partition("=")
        src, dst = src.strip(), dst.strip()
        if not sep or not src or not dst:
            raise PredictError(f"--band-map: {pair.strip()!r} is not INPUT=MODEL (e.g. --band-map b1=blue,b2=green)")
        if src in out:
            raise PredictError(f"--band-map: input band {src!r} is mapped twice")
        out[src] = dst
    return out


def requested_names(model_bands: Sequence[str], band_map: Mapping[str, str]) -> list[str]:
    """The input band name to look for for each model band: the ``--band-map`` source, else the model's name."""
    keys = {band_key(b): b for b in model_bands}
    inverse: dict[str, str] = {}
    for src, dst in band_map.items():
        model_band = keys.get(band_key(dst))
        if model_band is None:
            raise PredictError(f"--band-map {src}={dst}: {dst!r} is not a band of the model; its bands are "
                               f"{', '.join(model_bands)}")
        if model_band in inverse:
            raise PredictError(f"--band-map maps both {inverse[model_band]!r} and {src!r} to model band {model_band!r}")
        inverse[model_band] = src
    return [inverse.get(b, b) for b in model_bands]


def match_bands(wanted: Sequence[str], available: Sequence[Sequence[str]], source: str) -> tuple[int, ...]:
    """Index into ``available`` (each band's names: name, common name, ...) of every ``wanted`` band.

    An exact name wins; else the band whose identity (``band_key``) is the wanted band's. Every missing
    or ambiguous band is reported at once, with the input's bands listed.
    """
    shown = ", ".join(" / ".join(dict.fromkeys(n for n in names if n)) for names in available)
    exact = [{normalize_name(n) for n in names if n} for names in available]
    identity = [{band_key(n) for n in names if n} for names in available]
    out: list[int] = []
    problems: list[str] = []
    for name in wanted:
        hits = [i for i, names in enumerate(exact) if normalize_name(name) in names]
        if not hits:
            hits = [i for i, keys in enumerate(identity) if band_key(name) in keys]
        if len(hits) == 1:
            out.append(hits[0])
        elif hits:
            problems.append(f"band {name!r} is ambiguous (it matches input bands {', '.join(str(i + 1) for i in hits)})")
        else:
            problems.append(f"band {name!r} is missing")
    if problems:
        raise PredictError(f"input {source}: {'; '.join(problems)}; the input has bands {shown} "
                           "(map other names with --band-map INPUT=MODEL)")
    return tuple(out)


def _is_identity(transform: Sequence[float]) -> bool:
    return tuple(float(v) for v in transform[:6]) == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def check_scene(scene: Scene) -> Scene:
    """Refuse a scene ``predict`` cannot place or tile: no CRS, an identity transform, or no pixels."""
    if not scene.crs_wkt:
        raise PredictError(f"input {scene.path} is not georeferenced: it has no CRS (the output must carry one)")
    if _is_identity(scene.transform):
        raise PredictError(f"input {scene.path} is not georeferenced: its transform is the identity "
                           "(pixel coordinates); expected a geotransform such as a GeoTIFF's")
    height, width = scene.shape
    if height == 0 or width == 0 or len(scene.bands) == 0:
        raise PredictError(f"input {scene.path} is empty: {len(scene.bands)} bands of {height} x {width} pixels")
    if height * width > MAX_SCENE_PIXELS:
        raise PredictError(f"input {scene.path} is {width} x {height} pixels ({height * width:.3g}), more than the "
                           f"{MAX_SCENE_PIXELS:.3g} one prediction may cover; cut it into smaller scenes (e.g. with "
                           "gdal_translate -srcwin) and predict each")
    return scene
