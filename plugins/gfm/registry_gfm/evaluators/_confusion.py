"""Land-cover scores from a confusion matrix: overall accuracy, per-class IoU and F1, mIoU, macro-F1; JSON.

Rows are the true class, columns the predicted one. A class that appears neither in the labels nor in the
predictions has no IoU or F1 (NaN in the per-class lists) and is left out of the means, as in mmsegmentation
and torchmetrics' ``ignore`` of absent classes; one that is labelled but never predicted scores 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from registry_core.atomic import atomic_path

__all__ = ["confusion", "scores", "write_confusion_json"]


def confusion(pred: np.ndarray, label: np.ndarray, num_classes: int, ignore_index: int) -> np.ndarray:
    """``(K, K)`` int64 counts of (true, predicted) over the labelled entries of ``label``."""
    label = np.asarray(label).ravel()
    pred = np.asarray(pred).ravel()
    keep = label != ignore_index
    if np.any((label[keep] < 0) | (label[keep] >= num_classes)):
        raise ValueError(f"labels outside 0 .. {num_classes - 1} (ignore_index {ignore_index}) reached the metrics")
    flat = label[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores(matrix: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Overall accuracy, mIoU, macro-F1 and per-class IoU / F1 / support of a confusion matrix."""
    cm = np.asarray(matrix, np.float64)
    tp = np.diag(cm)
    truth, predicted = cm.sum(axis=1), cm.sum(axis=0)
    union = truth + predicted - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        f1 = np.where(truth + predicted > 0, 2 * tp / (truth + predicted), np.nan)
    total = cm.sum()
    present = ~np.isnan(iou)
    return {
        "overall_accuracy": float(tp.sum() / total) if total else math.nan,
        "miou": float(iou[present].mean()) if present.any() else math.nan,
        "macro_f1": float(f1[present].mean()) if present.any() else math.nan,
        "pixels": float(total),
        "iou": {n: float(v) for n, v in zip(names, iou)},
        "f1": {n: float(v) for n, v in zip(names, f1)},
        "support": {n: int(v) for n, v in zip(names, truth)},
    }


def write_confusion_json(path: Path, matrix: np.ndarray, names: Sequence[str], metrics: dict[str, Any]) -> Path:
    """The matrix (rows true, columns predicted), the class names and the scores, atomically."""
    doc = {"classes": list(names), "rows": "true class", "columns": "predicted class",
           "matrix": np.asarray(matrix).astype(int).tolist(), "metrics": metrics}
    text = json.dumps(doc, indent=2, allow_nan=True).replace("NaN", "null")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return path
