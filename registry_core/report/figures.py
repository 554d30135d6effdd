"""PNG charts for the report: line charts, heat maps (confusion matrices among them), image panels, grouped bars,
pixel-exact images and the last-layer attention figure of a run, drawn with matplotlib.

The core's curves and the plugins' figures share these, so every figure of a report looks alike; none is wider
than :data:`MAX_WIDTH` (panels wrap onto more rows), so an 800-px screen shows every label at its size. matplotlib
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

__all__ = ["MAX_WIDTH", "Heatmap", "PixelLabel", "RecordedAttention", "attention_figure", "bar_chart", "confusion_figure",
           "fit_columns", "heatmaps", "image_panels", "image_png", "line_chart"]

#: Dots per inch of every PNG: sharp enough on a laptop screen, small files.
DPI = 110
#: The widest figure in inches (792 px at DPI): it fits an 800-px screen at its natural size, so its labels are
#: never scaled down; wider layouts wrap their panels onto more rows.
MAX_WIDTH = 7.2
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
    #: Rotation of the column tick labels in degrees (90: one per token; 45 reads better for a few names).
    xtick_rotation: float = 90
    #: Text beside the colour bar: what its colour measures.
    colorbar_label: str = ""
    #: Font size of ``cell_text`` in points.
    cell_size: float = 7
    #: True: square cells, the array's proportions kept (a map over a grid of patches); an RGB image always is.
    square: bool = False


def fit_columns(panel_width: float, margin: float = 0.0, wanted: int | None = None) -> int:
    """How many panels ``panel_width`` inches wide (plus ``margin`` for the whole row) fit in :data:`MAX_WIDTH`,
    at least one and at most ``wanted``."""
    fits = max(1, int((MAX_WIDTH - margin) / panel_width + 1e-9))
    return fits if wanted is None else max(1, min(wanted, fits))


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
    """One line (with markers when it has few points) per ``label: (xs, ys)``, with a legend; a series of one point
    is a large marker whose legend gives its value. ``log_x``: a log-2 x axis; ``xticks``: ``(x, label)`` ticks in
    place of matplotlib's."""
    fig = _figure(5.2, 3.2)
    ax = fig.subplots()
    for label, (xs, ys) in series.items():
        if len(xs) == 1:  # a line through one point draws nothing: a large marker, its value in the legend
            ax.plot(list(xs), list(ys), label=f"{label}: {float(ys[0]):.4g} at {float(xs[0]):g} (one point)",
                    linestyle="none", marker="D", markersize=8, markeredgecolor="black", markeredgewidth=0.8, zorder=3)
            continue
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


def _ticks(ax: Any, labels: Sequence[str] | None, axis: str, size: float, rotation: float = 90) -> None:
    if labels is None:
        return
    positions = list(range(len(labels)))
    if axis == "x":
        slanted = 0 < rotation < 90
        ax.set_xticks(positions, list(labels), rotation=rotation, fontsize=size, ha="right" if slanted else "center",
                      rotation_mode="anchor" if slanted else "default")
    else:
        ax.set_yticks(positions, list(labels), fontsize=size)


def _cell_text(ax: Any, image: Any, text: Sequence[Sequence[str]], size: float) -> None:
    """Each cell's text at its centre: white on dark cells, black on light ones."""
    values = image.get_array()
    for i, row in enumerate(text):
        for j, label in enumerate(row):
            dark = float(image.norm(values[i, j])) > 0.6
            ax.text(j, i, label, ha="center", va="center", fontsize=size, color="white" if dark else "black")


def _heatmap_panel(fig: Figure, ax: Any, panel: Heatmap, cmap: str, vmin: float | None, vmax: float | None) -> None:
    """One :class:`Heatmap` drawn into ``ax``: image, title, labels, ticks, cell text and colour bar."""
    rgb = len(getattr(panel.values, "shape", ())) == 3  # an (H, W, 3) image keeps its proportions
    image = ax.imshow(panel.values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="equal" if rgb or panel.square else "auto",
                      interpolation="nearest")
    ax.set_title(panel.title, fontsize="small")
    ax.set_xlabel(panel.xlabel, fontsize="small")
    ax.set_ylabel(panel.ylabel, fontsize="small")
    if panel.ticks:
        from matplotlib.ticker import MaxNLocator

        for axis in (ax.xaxis, ax.yaxis):  # rows and columns are counted: whole numbers where no labels are given
            axis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        _ticks(ax, panel.xticks, "x", panel.tick_size, panel.xtick_rotation)
        _ticks(ax, panel.yticks, "y", panel.tick_size)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if panel.cell_text is not None:
        _cell_text(ax, image, panel.cell_text, panel.cell_size)
    if panel.colorbar:
        bar = fig.colorbar(image, ax=ax, shrink=0.8)
        if panel.colorbar_label:
            bar.set_label(panel.colorbar_label, fontsize="small")


def heatmaps(path: str | Path, panels: Sequence[Heatmap | None], *, title: str, columns: int | None = None,
             cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None,
             panel_size: float = 2.6) -> Path:
    """Panels of 2-D arrays (or RGB images), ``columns`` per row (fewer when they would not fit in
    :data:`MAX_WIDTH`), each with its colour bar; a None panel leaves its place blank."""
    if not any(p is not None for p in panels):
        raise ValueError(f"heatmaps {path}: no panels to draw")
    cols = fit_columns(panel_size, 0.6, min(columns or len(panels), len(panels)))
    rows = -(-len(panels) // cols)
    fig = _figure(panel_size * cols + 0.6, panel_size * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        panel = panels[i] if i < len(panels) else None
        if panel is None:
            ax.set_axis_off()
            continue
        _heatmap_panel(fig, ax, panel, cmap, vmin, vmax)
    fig.suptitle(title, fontsize="medium")
    return _save(fig, path)


def image_panels(path: str | Path, panels: Sequence[tuple[str, Any]], *, title: str,
                 legend: Sequence[tuple[str, str]] = (), panel_size: float = 3.6) -> Path:
    """RGB images ``(H, W, 3)`` in [0, 1] side by side under their titles, wrapped onto more rows when they would
    not fit in :data:`MAX_WIDTH`; ``legend``: (label, colour) patches under them."""
    if not panels:
        raise ValueError(f"image_panels {path}: no panels to draw")
    from matplotlib.patches import Patch

    cols = fit_columns(panel_size, 0.0, len(panels))
    rows = -(-len(panels) // cols)
    fig = _figure(panel_size * cols, panel_size * rows + (0.9 if legend else 0.4))
    axes = fig.subplots(rows, cols, squeeze=False).flat
    for i, ax in enumerate(axes):
        if i >= len(panels):
            ax.set_axis_off()
            continue
        name, rgb = panels[i]
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
    fig = _figure(min(MAX_WIDTH, max(4.5, 0.3 * len(categories) * max(1, len(series)) + 1.5)), 3.4)
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


def _count(value: float) -> str:
    """A cell's count, short enough for a small cell: 987, 12.3k, 456k, 7.9M."""
    n = int(value)
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.3g}k"
    return f"{n / 1_000_000:.3g}M"


def confusion_figure(path: str | Path, matrix: Any, names: Sequence[str], *, title: str) -> Path:
    """A confusion matrix (rows: true class, columns: predicted) as a heat map of each row's share (recall), with
    the count in each cell, the class names on both axes in 8 pt or more, and a colour bar from 0 to 1."""
    import numpy as np

    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(names) or not len(names):
        raise ValueError(f"confusion_figure {path}: a {counts.shape} matrix for {len(names)} class name(s)")
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(names)
    panel = Heatmap("", share, "predicted class", "true class", list(names), list(names),
                    cell_text=[[_count(v) for v in row] for row in counts], tick_size=9 if k <= 12 else 8,
                    xtick_rotation=45, colorbar_label="share of the true class (recall)",
                    cell_size=8 if k <= 10 else 6.5)
    return heatmaps(path, [panel], title=title, cmap="Blues", vmin=0.0, vmax=1.0,
                    panel_size=min(MAX_WIDTH - 0.6, max(4.6, 0.42 * k + 2.4)))


class PixelLabel(NamedTuple):
    """A text of :func:`image_png`: its top corner at pixel ``(x, y)`` (y down), the left one unless ``align`` is
    ``"right"`` (the text ends at ``x``) or ``"center"``."""

    x: int
    y: int
    text: str
    align: str = "left"


def image_png(path: str | Path, pixels: Any, *, labels: Sequence[PixelLabel | tuple[int, int, str]] = (),
              font_px: float = 9) -> Path:
    """An ``(H, W, 3)`` uint8 image written as an RGB PNG of exactly ``W x H`` pixels, each pixel as given, with
    ``labels`` (:class:`PixelLabel`, or ``(x, y, text)`` left-aligned) in black, ``font_px`` pixels high.

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
    for label in labels:  # display coordinates count pixels up from the bottom
        x, y, text, align = PixelLabel(*label)
        if align not in ("left", "right", "center"):
            raise ValueError(f"image_png {path}: label {text!r} has align {align!r}; expected left, right or center")
        fig.text(x, height - y, text, transform=IdentityTransform(), ha=align, va="top", color="black",
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
    cols = fit_columns(panel_size, 0.6, max(len(row) for row in rows))
    # each row of panels starts a row of the figure (wrapped when wider than MAX_WIDTH), blanks filling the last
    flat: list[Heatmap | None] = [p for row in rows for p in [*row, *[None] * (-len(row) % cols)]]
    image = heatmaps(out_dir / f"{run.label}-attention.png", flat, title=title, columns=cols, vmin=vmin, vmax=vmax,
                     panel_size=panel_size)
    text = (f"Attention weights of layer {recorded.layers} of {recorded.layers} of the trained {recorded.kind} "
            f"{run.slot('backbone').get('use', 'backbone')} {caption(recorded)}")
    return ReportFigure("Attention", f"{run.label}: {recorded.kind} attention", text, image)
