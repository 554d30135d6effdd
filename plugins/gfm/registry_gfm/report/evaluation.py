"""What the imagery evaluators left in a run folder, for the report: their PNGs and the baselines' per-class IoU.

The reconstruction grid (``reconstruction``'s ``out``) and the confusion matrix (``task-metrics``' ``<out>.png``)
are copied as they are, so the report shows exactly what the run wrote; ``baselines.json`` becomes a bar chart.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry_core.report import ReportFigure, ReportRun
from registry_core.report.figures import bar_chart

__all__ = ["evaluation_figures"]


def _in_run(run: ReportRun, value: Any, suffix: str = "") -> Path | None:
    """An evaluator's ``out`` option as a file inside the run folder; None when unset. A run folder is untrusted
    input: a path that leaves it (absolute, ``..``, a link out) is refused with ValueError, which the report
    shows as a warning, and nothing outside is read."""
    if not isinstance(value, str) or not value:
        return None
    path = run.path / (Path(value).with_suffix(suffix) if suffix else Path(value))
    if Path(value).is_absolute() or not path.resolve().is_relative_to(run.path.resolve()):
        raise ValueError(f"run {run.path}: evaluator option 'out' {value!r} points outside the run folder; "
                         "the report reads only files inside it")
    return path


def _copy(src: Path, out_dir: Path, name: str) -> Path:
    target = out_dir / name
    shutil.copyfile(src, target)
    return target


def _reconstruction(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    figures = []
    for options in run.evaluator_options("gfm:reconstruction"):
        src = _in_run(run, options.get("out"))
        if src is None or not src.is_file():
            continue
        metrics = run.evaluator("gfm:reconstruction")
        scores = f" Masked-patch MSE {metrics['mse']:.4g}, PSNR {metrics['psnr']:.3g} dB." if "mse" in metrics else ""
        mask = run.slot("objective").get("mask_ratio")
        hidden = f"{mask:.0%} of the patches" if isinstance(mask, int | float) else "the masked patches"
        figures.append(ReportFigure(
            "Reconstructions", f"{run.label}: MAE reconstructions",
            f"Validation chips as RGB composites: input, input with {hidden} hidden (grey), the reconstruction "
            f"(visible patches pasted back) and the per-pixel error.{scores} ({src.name} of the run)",
            _copy(src, out_dir, f"{run.label}-reconstruction.png")))
    return figures


def _confusion(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    figures = []
    for options in run.evaluator_options("gfm:task-metrics"):
        src = _in_run(run, options.get("out"), ".png")
        if src is None or not src.is_file():
            continue
        metrics = run.evaluator("gfm:task-metrics")
        scores = (f" Overall accuracy {metrics['overall_accuracy']:.3f}, mIoU {metrics['miou']:.3f}."
                  if "miou" in metrics else "")
        figures.append(ReportFigure(
            "Segmentation", f"{run.label}: confusion matrix",
            f"Validation pixels by true class (rows) and predicted class (columns); colour is the share of the row "
            f"(recall).{scores}", _copy(src, out_dir, f"{run.label}-confusion.png")))
    return figures


#: baselines.json's rows and how the chart names them.
_MODELS = (("finetuned", "finetuned encoder"), ("random_init", "random-init encoder"), ("random_forest", "random forest"))


def _score(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def _baselines(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    figures = []
    for options in run.evaluator_options("gfm:baselines"):
        src = _in_run(run, options.get("out"))
        if src is None or not src.is_file():
            continue
        table = json.loads(src.read_text(encoding="utf-8"))
        rows = {label: table[key] for key, label in _MODELS if isinstance(table.get(key), Mapping)}
        if not rows:
            continue
        classes = list(next(iter(rows.values())).get("iou", {}))
        series = {f"{label} (mIoU {_score(row.get('miou'))})": [float(row["iou"].get(c) or 0.0) for c in classes]
                  for label, row in rows.items()}
        image = bar_chart(out_dir / f"{run.label}-baselines.png", classes, series, title=f"{run.name}: IoU per class",
                          ylabel="IoU (validation)")
        figures.append(ReportFigure(
            "Segmentation", f"{run.label}: finetuned vs baselines",
            "IoU of each class on the validation strip for the finetuned encoder, the same head on a randomly "
            "initialised encoder, and a per-pixel random forest on the bands (mIoU in the legend).", image))
    return figures


def evaluation_figures(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """The reconstruction grid, confusion matrix and baseline chart of the evaluators that wrote them."""
    return [*_reconstruction(run, out_dir), *_confusion(run, out_dir), *_baselines(run, out_dir)]
