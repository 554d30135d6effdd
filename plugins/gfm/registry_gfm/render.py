"""Imagery drawn for people: RGB band picking, percentile stretch, the reconstruction grid and confusion-matrix PNGs.

Arrays are ``(C, H, W)`` float numpy (one frame of a chip). The PNGs are drawn through
``registry_core.report.figures`` (matplotlib, imported when drawing), like every figure of the report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from registry_gfm.bands import SENSORS, Sensor, band_key, get_sensor

if TYPE_CHECKING:
    from registry_core.report.figures import PixelLabel

__all__ = ["GridRow", "apply_stretch", "default_scale", "error_map", "grid_size", "rgb_indices", "stretch",
           "stretch_limits", "write_confusion_png", "write_grid_png"]

#: Grey shown for masked patches in the "masked" panel (stretched units, 0..1).
MASK_GREY = 0.5
#: Height (pixels) of the grid's texts: panel titles and the error colour bar's numbers.
FONT = 12
#: Header height (pixels) holding the panel titles.
HEADER = 18
#: Padding (pixels) between and around panels.
PAD = 2
#: Side (pixels) small chips are enlarged to, about: four panels of it fit an 800-px screen unscaled.
PANEL = 192
#: Height (pixels) of the error colour bar under the error column, and of the footer holding it and its numbers.
BAR = 10
FOOTER = BAR + FONT + 8


def rgb_indices(bands: Sequence[str], sensor: str | Sensor | None = None) -> tuple[int, int, int]:
    """Indices of the red, green and blue bands in ``bands``, by STAC common name through the band catalog.

    Names may be common names (``red``) or band ids and aliases (``B04``, ``SR_B4``). ``sensor`` settles ids
    that mean different bands in different sensors (``B04`` is red on Sentinel-2 but NIR on Landsat 7).
    Without it, names are first keyed sensor-independently; when that does not find all three colours, each
    catalog sensor in which they all resolve votes, and the most common answer wins (ties: catalog order).
    When no reading finds red, green and blue: the first three bands, or band 0 repeated (grey) when fewer.
    """
    names = list(bands)
    if not names:
        raise ValueError("rgb_indices: no bands given")
    wanted = ("red", "green", "blue")

    def pick(keys: Sequence[str]) -> tuple[int, int, int] | None:
        if all(w in keys for w in wanted):
            return (keys.index("red"), keys.index("green"), keys.index("blue"))
        return None

    if sensor is not None:
        found = pick([band_key(n, get_sensor(sensor)) for n in names])
    else:
        found = pick([band_key(n) for n in names])
        if found is None:
            votes = Counter(v for s in SENSORS.values() if (v := pick([band_key(n, s) for n in names])) is not None)
            found = votes.most_common(1)[0][0] if votes else None  # most_common keeps first-seen order on ties
    if found is not None:
        return found
    return (0, 1, 2) if len(names) >= 3 else (0, 0, 0)


def _valid_pixels(rgb: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """(H, W) bool: finite in every channel and, when given, ``valid`` ((H, W) or (C, H, W), all channels)."""
    ok = np.isfinite(rgb).all(axis=0)
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        ok &= v.all(axis=0) if v.ndim == 3 else v
    return ok


def stretch_limits(
    rgb: np.ndarray, low: float = 2, high: float = 98, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(lo, hi)`` (shape (C,)): the ``low`` and ``high`` percentiles over valid pixels.

    A channel with no valid pixel gets NaN limits (it renders black).
    """
    arr = np.asarray(rgb, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"stretch expects a (C, H, W) array, got shape {arr.shape}")
    if not 0 <= low < high <= 100:
        raise ValueError(f"stretch percentiles must satisfy 0 <= low < high <= 100, got low={low}, high={high}")
    ok = _valid_pixels(arr, valid)
    lo = np.full(arr.shape[0], np.nan)
    hi = np.full(arr.shape[0], np.nan)
    if ok.any():
        px = arr[:, ok]  # (C, n)
        lo, hi = np.percentile(px, [low, high], axis=1)
    return lo, hi


def apply_stretch(
    rgb: np.ndarray, lo: np.ndarray, hi: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """``(x - lo) / (hi - lo)`` clipped to [0, 1], per channel; invalid or NaN pixels are 0 (black).

    A constant channel (``hi == lo``) does not divide by zero: its valid pixels show mid-grey (0.5).
    """
    arr = np.asarray(rgb, dtype=np.float64)
    lo = np.asarray(lo, dtype=np.float64).reshape(-1, 1, 1)
    hi = np.asarray(hi, dtype=np.float64).reshape(-1, 1, 1)
    span = hi - lo
    flat = ~(span > 1e-12 * np.maximum(1.0, np.abs(lo)))  # also True for NaN limits
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(flat, MASK_GREY, (arr - lo) / np.where(flat, 1.0, span))
    out = np.clip(out, 0.0, 1.0)
    out[np.broadcast_to(np.isnan(lo) | np.isnan(hi), out.shape)] = 0.0
    out[:, ~_valid_pixels(arr, valid)] = 0.0
    return out


def stretch(rgb: np.ndarray, low: float = 2, high: float = 98, valid: np.ndarray | None = None) -> np.ndarray:
    """The percentile stretch of a remote-sensing viewer: (C, H, W) -> (C, H, W) in [0, 1].

    Per channel, values at the ``low``-th percentile map to 0 and at the ``high``-th to 1 (percentiles over
    valid pixels only: finite in every channel and True in ``valid``), clipped; invalid pixels are black and
    a constant channel is mid-grey.
    """
    lo, hi = stretch_limits(rgb, low, high, valid)
    return apply_stretch(rgb, lo, hi, valid)


def _colormap(values: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) in [0, 1] through viridis."""
    from matplotlib import colormaps

    return np.asarray(colormaps["viridis"](values)[..., :3], dtype=np.float64)


def error_map(inp: np.ndarray, recon: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel mean absolute error over all channels, (H, W); NaN where a pixel is not valid."""
    a, b = np.asarray(inp, dtype=np.float64), np.asarray(recon, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"input {a.shape} and reconstruction {b.shape} differ in shape")
    err = np.abs(a - b).mean(axis=0)
    ok = _valid_pixels(a, valid) & np.isfinite(b).all(axis=0)
    return np.where(ok, err, np.nan)


class GridRow(NamedTuple):
    """One sample of the grid: arrays of one frame."""

    #: (C, H, W) the input chip.
    input: np.ndarray
    #: (C, H, W) the model's reconstruction, same bands.
    reconstruction: np.ndarray
    #: (H, W) bool, True where the pixel lies in a masked patch, or (C, H, W) per band (band groups mask
    #: bands apart; a pixel shows grey when any of the shown RGB bands is masked). None: nothing masked.
    mask: np.ndarray | None = None
    #: (H, W) or (C, H, W) bool, True where the input pixel is usable (None: every finite pixel).
    valid: np.ndarray | None = None


def _as_row(row: GridRow | Mapping[str, Any] | Sequence[Any]) -> GridRow:
    if isinstance(row, GridRow):
        return row
    if isinstance(row, Mapping):
        return GridRow(row["input"], row["reconstruction"], row.get("mask"), row.get("valid"))
    return GridRow(*row)


def grid_size(rows: int, height: int, width: int, scale: int | None = None, titles: bool = True) -> tuple[int, int]:
    """(width, height) in pixels of a grid of ``rows`` samples of (height, width) chips, 4 panels each, enlarged
    ``scale`` times (default: :func:`default_scale`), with the error colour bar under them."""
    k = default_scale(height, width) if scale is None else scale
    return (4 * width * k + 5 * PAD, (HEADER if titles else 0) + rows * height * k + (rows + 1) * PAD + FOOTER)


def default_scale(height: int, width: int) -> int:
    """Upsampling that makes small chips visible: panels of about :data:`PANEL` pixels, at least 1x."""
    return max(1, PANEL // max(height, width))


def _check_grid(items: Sequence[GridRow], bands: Sequence[str], titles: Sequence[str] | None,
                scale: int | None) -> tuple[tuple[int, int, int], int]:
    """The rows' ``(C, H, W)`` and the upsampling; ValueError naming the bad argument."""
    if not items:
        raise ValueError("write_grid_png: no rows to draw")
    if titles is not None and len(titles) != 4:
        raise ValueError(f"write_grid_png: titles must name the 4 panels, got {list(titles)}")
    c, h, w = np.asarray(items[0].input).shape
    if len(bands) != c:
        raise ValueError(f"write_grid_png: {len(bands)} band names {list(bands)} for {c}-band arrays")
    k = scale if scale is not None else default_scale(h, w)
    if k < 1:
        raise ValueError(f"write_grid_png: scale must be >= 1, got {k}")
    return (c, h, w), k


def _row_panels(i: int, row: GridRow, idx: list[int], shape: tuple[int, int, int], low: float,
                high: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Row ``i``'s input, masked and reconstruction panels ``(H, W, 3)`` in [0, 1], and its error map."""
    _, h, w = shape
    inp, rec = np.asarray(row.input, dtype=np.float64), np.asarray(row.reconstruction, dtype=np.float64)
    if inp.shape != shape or rec.shape != shape:
        raise ValueError(f"write_grid_png: row {i} has input {inp.shape} and reconstruction {rec.shape}, "
                         f"expected {shape} for both")
    valid = row.valid
    if valid is not None and np.asarray(valid).ndim == 3:
        valid = np.asarray(valid)[idx]
    lo, hi = stretch_limits(inp[idx], low, high, valid)
    shown = apply_stretch(inp[idx], lo, hi, valid)
    masked = shown.copy()
    if row.mask is not None:
        m = np.asarray(row.mask, dtype=bool)
        if m.shape == shape:
            m = m[idx].any(axis=0)
        if m.shape != (h, w):
            raise ValueError(f"write_grid_png: row {i} mask has shape {m.shape}, expected {(h, w)} or {shape}")
        masked[:, m] = MASK_GREY
    recon = apply_stretch(rec[idx], lo, hi)  # shown wherever finite: also the model's gap filling
    return [p.transpose(1, 2, 0) for p in (shown, masked, recon)], error_map(inp, rec, row.valid)


def _error_panels(errors: Sequence[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """Each error map through viridis from 0 to the 99th percentile of all valid errors (invalid: black)."""
    finite = np.concatenate([e[np.isfinite(e)] for e in errors])
    vmax = float(np.percentile(finite, 99)) if finite.size else 0.0
    out = []
    for err in errors:
        ok = np.isfinite(err)
        scaled = np.clip(np.where(ok, err, 0.0) / vmax, 0.0, 1.0) if vmax > 0 else np.zeros_like(err)
        rgb = _colormap(scaled)
        rgb[~ok] = 0.0
        out.append(rgb)
    return out, vmax


def _canvas(panels: Sequence[Sequence[np.ndarray]], h: int, w: int, k: int, titles: bool) -> np.ndarray:
    """The grid's white ``(height, width, 3)`` uint8 canvas with each panel upsampled ``k`` times in place and the
    error colour bar (viridis, left to right) in the footer under the error column."""
    width, height = grid_size(len(panels), h, w, k, titles)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    top = (HEADER if titles else 0) + PAD
    for r, row_panels in enumerate(panels):
        y = top + r * (h * k + PAD)
        for j, panel in enumerate(row_panels):
            x = PAD + j * (w * k + PAD)
            big = np.repeat(np.repeat(panel, k, axis=0), k, axis=1)
            canvas[y:y + h * k, x:x + w * k] = np.round(big * 255).astype(np.uint8)
    x, y = PAD + 3 * (w * k + PAD), height - FOOTER + PAD
    ramp = _colormap(np.linspace(0.0, 1.0, w * k)[None, :])  # (1, w * k, 3)
    canvas[y:y + BAR, x:x + w * k] = np.round(np.repeat(ramp, BAR, axis=0) * 255).astype(np.uint8)
    return canvas


def _footer_labels(height: int, w: int, k: int, vmax: float) -> list[PixelLabel]:
    """What the error colour bar means (left of it) and its two ends (under it)."""
    from registry_core.report.figures import PixelLabel

    x, y = PAD + 3 * (w * k + PAD), height - FOOTER + PAD
    what = "error: mean |input - reconstruction| over the bands"
    fits = len(what) * FONT * 0.6 < x - 6  # about 0.6 em a character; a tiny grid keeps the short name
    return [PixelLabel(x - 6, y - 1, what if fits else "error", "right"),
            PixelLabel(x, y + BAR + 2, "0"), PixelLabel(x + w * k, y + BAR + 2, f"{vmax:.3g}", "right")]


def write_grid_png(
    path: str | Path,
    rows: Sequence[GridRow | Mapping[str, Any] | Sequence[Any]],
    bands: Sequence[str],
    titles: Sequence[str] | None = ("input", "masked", "reconstruction", "error"),
    *,
    low: float = 2,
    high: float = 98,
    scale: int | None = None,
    sensor: str | Sensor | None = None,
) -> Path:
    """Write one PNG whose row ``i`` shows sample ``i``: input, masked input, reconstruction and error.

    - input: the RGB bands (:func:`rgb_indices`) stretched by :func:`stretch`; the reconstruction panel uses
      the SAME per-channel limits (computed from the input), so the two are comparable; it is shown wherever
      it is finite, also at pixels where the input is not valid (what the model fills in there);
    - masked: the input with masked patches grey (invalid input pixels black in both input panels);
    - error: per-pixel mean absolute error over all bands, viridis from 0 to the 99th percentile of the whole
      grid's valid errors (one scale for every row; the colour bar under the error column shows it); invalid
      pixels black.

    Panels are upsampled by ``scale`` (default: to about :data:`PANEL` pixels, nearest neighbour); the image size
    is :func:`grid_size`. ``titles=None`` leaves out the header. Written atomically; returns the path.
    """
    from registry_core.report.figures import PixelLabel, image_png

    items = [_as_row(r) for r in rows]
    shape, k = _check_grid(items, bands, titles, scale)
    idx = list(rgb_indices(bands, sensor))
    drawn = [_row_panels(i, row, idx, shape, low, high) for i, row in enumerate(items)]
    errors, vmax = _error_panels([err for _, err in drawn])
    panels = [[*row_panels, err] for (row_panels, _), err in zip(drawn, errors)]
    _, h, w = shape
    canvas = _canvas(panels, h, w, k, titles is not None)
    labels = _footer_labels(canvas.shape[0], w, k, vmax)
    if titles is not None:
        labels += [PixelLabel(PAD + j * (w * k + PAD) + 1, 2, name) for j, name in enumerate(titles)]
    return image_png(path, canvas, labels=labels, font_px=FONT)


def write_confusion_png(path: Path, matrix: np.ndarray, names: Sequence[str], title: str = "") -> Path:
    """A heat map of the row-normalised matrix (recall per true class) with the counts written in each cell and a
    colour bar (``registry_core.report.figures.confusion_figure``, as the report draws every confusion matrix)."""
    from registry_core.report.figures import confusion_figure

    path.parent.mkdir(parents=True, exist_ok=True)
    return confusion_figure(path, np.asarray(matrix, np.int64), list(names),
                            title=title or "confusion matrix (rows: true, columns: predicted; colour: share of the row)")
