"""PNG charts for the report: line charts, heat maps, image panels and grouped bars, drawn with matplotlib.

The core's curves and the plugins' figures share these, so every figure of a report looks alike. matplotlib
is imported inside each function (``report`` is the only command that needs it; it comes with the
``registry-core[cli]`` extra) and used through its object API, never pyplot: no global state, no GUI backend.
Arrays are anything matplotlib takes (nested lists, numpy arrays).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from registry_core.atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Heatmap", "bar_chart", "heatmaps", "image_panels", "line_chart"]

#: Dots per inch of every PNG: sharp enough on a laptop screen, small files.
DPI = 110


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


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Figure, path: str | Path) -> Path:
    target = Path(path)
    with atomic_path(target) as tmp, tmp.open("wb") as fh:
        fig.savefig(fh, format="png")
    return target


def line_chart(path: str | Path, series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str,
               xlabel: str, ylabel: str) -> Path:
    """One line (with markers when it has few points) per ``label: (xs, ys)``, with a legend."""
    fig = _figure(5.2, 3.2)
    ax = fig.subplots()
    for label, (xs, ys) in series.items():
        ax.plot(list(xs), list(ys), label=label, marker="o" if len(xs) <= 12 else None, markersize=3, linewidth=1.4)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize="small")
    return _save(fig, path)


def _ticks(ax: Any, labels: Sequence[str] | None, axis: str) -> None:
    if labels is None:
        return
    positions = list(range(len(labels)))
    if axis == "x":
        ax.set_xticks(positions, list(labels), rotation=90, fontsize=6)
    else:
        ax.set_yticks(positions, list(labels), fontsize=6)


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
        panel = panels[i]
        rgb = len(getattr(panel.values, "shape", ())) == 3  # an (H, W, 3) image keeps its proportions
        image = ax.imshow(panel.values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="equal" if rgb else "auto",
                          interpolation="nearest")
        ax.set_title(panel.title, fontsize="small")
        ax.set_xlabel(panel.xlabel, fontsize="small")
        ax.set_ylabel(panel.ylabel, fontsize="small")
        if panel.ticks:
            _ticks(ax, panel.xticks, "x")
            _ticks(ax, panel.yticks, "y")
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        if panel.colorbar:
            fig.colorbar(image, ax=ax, shrink=0.8)
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
