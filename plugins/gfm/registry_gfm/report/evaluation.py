"""What the imagery evaluators left in a run folder, for the report: their PNGs and the baselines' per-class IoU.

The reconstruction grid (``reconstruction``'s ``out``) is copied as it is, so the report shows exactly what the
run wrote; the confusion matrix is drawn from ``task-metrics``' ``<out>.json`` like every heat map of the report
(its ``<out>.png`` copied when the JSON is missing); ``baselines.json`` becomes a bar chart with a sentence that
says plainly what its numbers mean.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry_core.report import ReportFigure, ReportRun
from registry_core.report.figures import bar_chart, confusion_figure

__all__ = ["CLEAR_GAIN", "evaluation_figures", "finding"]


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
            f"(visible patches pasted back) and the per-pixel error (mean absolute difference over the bands; its "
            f"colour bar is under the error column).{scores} ({src.name} of the run)",
            _copy(src, out_dir, f"{run.label}-reconstruction.png")))
    return figures


def _read_confusion(path: Path) -> tuple[list[list[int]], list[str]] | None:
    """The matrix and class names of ``task-metrics``' ``<out>.json``; None when it is missing or not one."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    matrix, names = doc.get("matrix"), doc.get("classes")
    if not isinstance(matrix, list) or not isinstance(names, list) or len(matrix) != len(names) or not names:
        return None
    if not all(isinstance(row, list) and len(row) == len(names) for row in matrix):
        return None
    return matrix, [str(n) for n in names]


def _confusion(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    figures = []
    for options in run.evaluator_options("gfm:task-metrics"):
        png, data = _in_run(run, options.get("out"), ".png"), _in_run(run, options.get("out"), ".json")
        if png is None or data is None:
            continue
        found = _read_confusion(data)
        target = out_dir / f"{run.label}-confusion.png"
        if found is not None:
            image = confusion_figure(target, found[0], found[1], title=f"{run.name}: confusion matrix")
        elif png.is_file():
            image = _copy(png, out_dir, target.name)
        else:
            continue
        metrics = run.evaluator("gfm:task-metrics")
        scores = (f" Overall accuracy {metrics['overall_accuracy']:.3f}, mIoU {metrics['miou']:.3f}."
                  if "miou" in metrics else "")
        figures.append(ReportFigure(
            "Segmentation", f"{run.label}: confusion matrix",
            f"Validation pixels by true class (rows) and predicted class (columns), the count in each cell; colour is "
            f"the share of the row (recall).{scores}", image))
    return figures


#: baselines.json's rows and how the chart names them.
_MODELS = (("finetuned", "finetuned encoder"), ("random_init", "random-init encoder"), ("random_forest", "random forest"))


def _score(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


#: A pretrained encoder that beats the random-init one by less mIoU than this is called "barely better".
CLEAR_GAIN = 0.02


def finding(table: Mapping[str, Any], encoder: str = "pretrained") -> str:
    """What ``baselines.json`` says in plain words: whether the finetuned run's ``encoder`` (``pretrained``: loaded
    from a pretraining run) beats the same head on a random-init encoder and the random forest, and the classes it
    never predicts correctly (IoU 0)."""
    rows = {key: table[key] for key, _ in _MODELS if isinstance(table.get(key), Mapping)}
    tuned = rows.get("finetuned", {})
    ours = tuned.get("miou")
    if not isinstance(ours, int | float):
        return ""
    out = []
    random = rows.get("random_init", {}).get("miou")
    if isinstance(random, int | float):
        gain = round(ours, 3) - round(random, 3)  # as the sentence shows them: "+0.000" would read oddly
        if gain <= 0:
            out.append(f"The {encoder} encoder is not better than a random one here: mIoU {ours:.3f} vs {random:.3f} "
                       "(random init).")
        elif gain < CLEAR_GAIN:
            out.append(f"The {encoder} encoder is barely better than a random one here: mIoU {ours:.3f} vs "
                       f"{random:.3f} (random init), +{gain:.3f}.")
        else:
            out.append(f"The {encoder} encoder beats a random one: mIoU {ours:.3f} vs {random:.3f} (random init).")
    forest = rows.get("random_forest", {}).get("miou")
    if isinstance(forest, int | float):
        theirs, mine = round(forest, 3), round(ours, 3)
        than = "above" if theirs > mine else "below" if theirs < mine else "the same as"
        out.append(f"A random forest on the bands alone scores {forest:.3f}, {than} the finetuned encoder's {ours:.3f}.")
    iou = tuned.get("iou")
    never = [str(c) for c, v in iou.items() if v == 0] if isinstance(iou, Mapping) else []
    if never:
        out.append(f"The finetuned encoder never predicted these classes correctly (IoU 0): {', '.join(never)}.")
    return " ".join(out)


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
            "initialised encoder, and a per-pixel random forest on the bands (mIoU in the legend).", image,
            finding=finding(table, "pretrained" if run.slot("weights") else "finetuned")))
    return figures


def evaluation_figures(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """The reconstruction grid, confusion matrix and baseline chart of the evaluators that wrote them."""
    return [*_reconstruction(run, out_dir), *_confusion(run, out_dir), *_baselines(run, out_dir)]
