"""PNG charts for the report: line charts, heat maps, image panels, grouped bars, pixel-exact images and the
last-layer attention figure of a run, drawn with matplotlib.

The core's curves and the plugins' figures share these, so every figure of a report looks alike. matplotlib
is imported inside each function (``report`` is the only command that needs it; it comes with the
``registry-core[cli]`` extra) and used through its object API, never pyplot: no global state, no GUI backend.
Arrays are anything matplotlib takes (nested lists, numpy arrays).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from registry_core.atomic import atomic_path
from registry_core.report import ReportFigure, ReportRun

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Heatmap", "RecordedAttention", "attention_figure", "bar_chart", "heatmaps", "image_panels", "image_png",
           "line_chart"]

#: Dots per inch of every PNG: sharp enough on a laptop screen, small files.
DPI = 110
#: Dots per inch of :func:`image_png`: a power of two, so ``pixels / dpi * dpi`` is exactly ``pixels``.
PIXEL_DPI = 64


class Heatmap(NamedTuple):
    """One panel of :func:`heatmaps`: a 2-D array with its title and axis labels."""

    title: str
    #: (rows, columns) values.
    values: Any
    xlabel: str = ""
    ylabel: str = ""
    #: Tick labels of the columns / rows (e.g. tokens); None: matplotlib's numeric ticks.
    xticks: Sequence[str] | None = None
    yticks: Sequence[str] | None = None
    #: False: no colour bar (an RGB ``(H, W, 3)`` image, or panels sharing the caption's scale).
    colorbar: bool = True
    #: False: no axis ticks (small panels; each tick label costs drawing time).
    ticks: bool = True
    #: Text written in each cell, ``(rows, columns)`` like ``values`` (e.g. counts); None: none.
    cell_text: Sequence[Sequence[str]] | None = None
    #: Font size of the tick labels in points (small: one per token; larger for a few class names).
    tick_size: float = 6


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Figure, path: str | Path) -> Path:
    target = Path(path)
    with atomic_path(target) as tmp, tmp.open("wb") as fh:
        fig.savefig(fh, format="png")
    return target


def line_chart(path: str | Path, series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str,
               xlabel: str, ylabel: str, log_x: bool = False,
               xticks: Sequence[tuple[float, str]] | None = None) -> Path:
    """One line (with markers when it has few points) per ``label: (xs, ys)``, with a legend; ``log_x``: a log-2
    x axis; ``xticks``: ``(x, label)`` ticks in place of matplotlib's."""
    fig = _figure(5.2, 3.2)
    ax = fig.subplots()
    for label, (xs, ys) in series.items():
        few = len(xs) <= 12
        ax.plot(list(xs), list(ys), label=label, marker="o" if few else None, markersize=5 if few else 3,
                linewidth=1.4)
    if log_x:
        ax.set_xscale("log", base=2)
    if xticks is not None:
        ax.set_xticks([x for x, _ in xticks], [text for _, text in xticks])
        ax.minorticks_off()
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize="small")
    return _save(fig, path)


def _ticks(ax: Any, labels: Sequence[str] | None, axis: str, size: float) -> None:
    if labels is None:
        return
    positions = list(range(len(labels)))
    if axis == "x":
        ax.set_xticks(positions, list(labels), rotation=90, fontsize=size)
    else:
        ax.set_yticks(positions, list(labels), fontsize=size)


def _cell_text(ax: Any, image: Any, text: Sequence[Sequence[str]]) -> None:
    """Each cell's text at its centre: white on dark cells, black on light ones."""
    values = image.get_array()
    for i, row in enumerate(text):
        for j, label in enumerate(row):
            dark = float(image.norm(values[i, j])) > 0.6
            ax.text(j, i, label, ha="center", va="center", fontsize="x-small", color="white" if dark else "black")


def _heatmap_panel(fig: Figure, ax: Any, panel: Heatmap, cmap: str, vmin: float | None, vmax: float | None) -> None:
    """One :class:`Heatmap` drawn into ``ax``: image, title, labels, ticks, cell text and colour bar."""
    rgb = len(getattr(panel.values, "shape", ())) == 3  # an (H, W, 3) image keeps its proportions
    image = ax.imshow(panel.values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="equal" if rgb else "auto",
                      interpolation="nearest")
    ax.set_title(panel.title, fontsize="small")
    ax.set_xlabel(panel.xlabel, fontsize="small")
    ax.set_ylabel(panel.ylabel, fontsize="small")
    if panel.ticks:
        _ticks(ax, panel.xticks, "x", panel.tick_size)
        _ticks(ax, panel.yticks, "y", panel.tick_size)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if panel.cell_text is not None:
        _cell_text(ax, image, panel.cell_text)
    if panel.colorbar:
        fig.colorbar(image, ax=ax, shrink=0.8)


def heatmaps(path: str | Path, panels: Sequence[Heatmap], *, title: str, columns: int | None = None,
             cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None,
             panel_size: float = 2.6) -> Path:
    """Panels of 2-D arrays (or RGB images) side by side, ``columns`` per row, each with its colour bar."""
    if not panels:
        raise ValueError(f"heatmaps {path}: no panels to draw")
    cols = min(columns or len(panels), len(panels))
    rows = -(-len(panels) // cols)
    fig = _figure(panel_size * cols + 0.6, panel_size * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(panels):
            ax.set_axis_off()
            continue
        _heatmap_panel(fig, ax, panels[i], cmap, vmin, vmax)
    fig.suptitle(title, fontsize="medium")
    return _save(fig, path)


def image_panels(path: str | Path, panels: Sequence[tuple[str, Any]], *, title: str,
                 legend: Sequence[tuple[str, str]] = (), panel_size: float = 3.6) -> Path:
    """RGB images ``(H, W, 3)`` in [0, 1] side by side under their titles; ``legend``: (label, colour) patches."""
    if not panels:
        raise ValueError(f"image_panels {path}: no panels to draw")
    from matplotlib.patches import Patch

    fig = _figure(panel_size * len(panels), panel_size + (0.9 if legend else 0.4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, rgb) in zip(axes, panels):
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(name, fontsize="small")
        ax.set_xticks([])  # no ticks, but the frame stays: white map edges remain visible
        ax.set_yticks([])
    if legend:
        handles = [Patch(facecolor=colour, edgecolor="black", linewidth=0.3, label=label) for label, colour in legend]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 8), fontsize="small",
                   frameon=False)
    fig.suptitle(title, fontsize="medium")
    return _save(fig, path)


def bar_chart(path: str | Path, categories: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str,
              ylabel: str) -> Path:
    """Grouped bars: one group per category, one bar per series (``label: values``, one value per category)."""
    fig = _figure(min(8.0, max(4.5, 0.3 * len(categories) * max(1, len(series)) + 1.5)), 3.4)
    ax = fig.subplots()
    width = 0.8 / max(1, len(series))
    for j, (label, values) in enumerate(series.items()):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(categories))]
        ax.bar(xs, list(values), width=width, label=label)
    ax.set_xticks(list(range(len(categories))), list(categories), rotation=30, ha="right", fontsize="small")
    ax.set(title=title, ylabel=ylabel)
    ax.grid(axis="y", alpha=0.3)
    if series:
        ax.legend(fontsize="small")
    return _save(fig, path)


def image_png(path: str | Path, pixels: Any, *, labels: Sequence[tuple[int, int, str]] = (),
              font_px: float = 9) -> Path:
    """An ``(H, W, 3)`` uint8 image written as an RGB PNG of exactly ``W x H`` pixels, each pixel as given, with
    ``labels``: ``(x, y, text)`` in black, ``font_px`` pixels high, top-left corner at pixel ``(x, y)`` (y down).

    For images composed pixel by pixel (grids of chips), which a plot's axes would resample.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.transforms import IdentityTransform
    from PIL import Image

    rgb = np.asarray(pixels)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"image_png {path}: expected an (H, W, 3) uint8 image, got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    fig = Figure(figsize=(width / PIXEL_DPI, height / PIXEL_DPI), dpi=PIXEL_DPI)
    fig.figimage(rgb, xo=0, yo=0, origin="upper")
    for x, y, text in labels:  # display coordinates count pixels up from the bottom
        fig.text(x, height - y, text, transform=IdentityTransform(), ha="left", va="top", color="black",
                 fontsize=font_px * 72 / PIXEL_DPI)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    drawn = np.asarray(canvas.buffer_rgba())[..., :3]
    if drawn.shape != rgb.shape:
        raise RuntimeError(f"image_png {path}: matplotlib drew {drawn.shape[:2]} pixels for {rgb.shape[:2]}")
    target = Path(path)
    with atomic_path(target) as tmp:
        Image.fromarray(np.ascontiguousarray(drawn), "RGB").save(tmp, format="PNG")
    return target


class RecordedAttention(NamedTuple):
    """What :func:`attention_figure` recorded: the last attention layer's weights on one input."""

    #: ``(heads, tokens, tokens)`` numpy weights of the first sample, rows the queries.
    weights: Any
    #: Attention layers of the backbone (the recorded one is the last).
    layers: int
    #: Whether the backbone is causal (each token sees only itself and earlier ones).
    causal: bool

    @property
    def kind(self) -> str:
        """``causal`` or ``bidirectional``."""
        return "causal" if self.causal else "bidirectional"


def attention_figure(run: ReportRun, out_dir: Path, parts: Any, forward: Callable[[], object],
                     panels: Callable[[RecordedAttention], Sequence[Sequence[Heatmap]]],
                     caption: Callable[[RecordedAttention], str], *, title: str, vmin: float | None = None,
                     vmax: float | None = None, panel_size: float = 2.6) -> ReportFigure | None:
    """A run's last-layer attention figure (``<label>-attention.png``, section "Attention"); None when the
    backbone has no ``registry_core.nn.SelfAttention`` layer.

    The weights of the backbone's last attention layer are recorded while ``forward()`` runs the model on one
    input (eval mode, no gradients; ``registry_core.nn.record_attention``); ``panels`` lays them out as rows of
    :class:`Heatmap` panels, and the caption is "Attention weights of layer L of L of the trained <kind>
    <backbone> " followed by ``caption(recorded)``.
    """
    import torch

    from registry_core.nn import SelfAttention, eval_mode, record_attention

    layers = [m for m in parts.backbone.modules() if isinstance(m, SelfAttention)]
    if not layers:
        return None
    with eval_mode(parts), torch.no_grad(), record_attention(layers[-1]) as weights:
        forward()
    recorded = RecordedAttention(weights[-1][0].numpy(), len(layers), bool(getattr(parts.backbone, "causal", False)))
    rows = [list(row) for row in panels(recorded)]
    image = heatmaps(out_dir / f"{run.label}-attention.png", [p for row in rows for p in row], title=title,
                     columns=max(len(row) for row in rows), vmin=vmin, vmax=vmax, panel_size=panel_size)
    text = (f"Attention weights of layer {recorded.layers} of {recorded.layers} of the trained {recorded.kind} "
            f"{run.slot('backbone').get('use', 'backbone')} {caption(recorded)}")
    return ReportFigure("Attention", f"{run.label}: {recorded.kind} attention", text, image)
