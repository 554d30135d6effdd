"""``task-metrics``: how well a finetuned pipeline labels one split (pixels or chips) - OA, IoU, mIoU, F1.

The objective's ``logits(parts, batch)`` gives class scores; their argmax is compared with the batch's
``label`` wherever it is not ``ignore_index``. The confusion matrix of the whole split is scored by
:mod:`registry_gfm.evaluators._confusion` and, with ``out`` set, saved as ``<out>.json`` and ``<out>.png``
(drawn by :func:`registry_gfm.render.write_confusion_png`; a relative ``out`` lands in the run's folder).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from registry_core.nn import eval_mode
from registry_core.training import to_device
from registry_gfm.batches import batches, in_run_dir, model_device
from registry_gfm.evaluators._confusion import confusion, scores, write_confusion_json
from registry_gfm.evaluators.specs import TaskMetricsConfig
from registry_gfm.render import write_confusion_png

__all__ = ["TaskMetricsEvaluator", "build", "class_names_of", "split_confusion"]

NAME = "task-metrics"


def class_names_of(pipeline: Any, num_classes: int) -> list[str]:
    """The data source's class names, else ``class 0``, ``class 1``, ..."""
    names = list(getattr(pipeline.data, "class_names", None) or [])
    return names if len(names) == num_classes else [f"class {i}" for i in range(num_classes)]


def split_confusion(pipeline: Any, split: str, batch_size: int, max_batches: int | None = None) -> np.ndarray:
    """The ``(K, K)`` confusion matrix of the pipeline's predictions on ``split``."""
    objective, parts = pipeline.objective, pipeline.parts
    if not callable(getattr(objective, "logits", None)):
        raise TypeError(f"{NAME}: objective {type(objective).__name__} gives no class scores (logits); use the "
                        "'finetune' objective with a head")
    k, ignore = int(objective.num_classes), int(objective.ignore_index)
    device = model_device(parts)
    matrix = np.zeros((k, k), np.int64)
    limit = None if max_batches is None else max_batches * batch_size
    dataset = pipeline.data.dataset(split)
    with eval_mode(parts), torch.inference_mode():
        for _, batch in batches(NAME, dataset, batch_size, pipeline.tokenizer, limit):
            if "label" not in batch:
                raise KeyError(f"{NAME}: the {split} split has no labels; give the data source `labels`")
            pred = objective.logits(parts, to_device(batch, device)).argmax(dim=1).cpu().numpy()
            matrix += confusion(pred, batch["label"].numpy(), k, ignore)
    return matrix


class TaskMetricsEvaluator:
    """``evaluate(pipeline, split) -> {overall_accuracy, miou, macro_f1, iou/<class>, f1/<class>, pixels}``."""

    def __init__(self, config: TaskMetricsConfig) -> None:
        self.config = config
        self.last: dict[str, Any] = {}

    def evaluate(self, pipeline: Any, split: str = "val") -> dict[str, float]:
        cfg = self.config
        matrix = split_confusion(pipeline, split, cfg.batch_size, cfg.max_batches)
        names = class_names_of(pipeline, matrix.shape[0])
        result = scores(matrix, names)
        self.last = {"matrix": matrix, "scores": result}
        if cfg.out:
            target = in_run_dir(pipeline, cfg.out)
            write_confusion_json(target.with_suffix(".json"), matrix, names, result)
            write_confusion_png(target.with_suffix(".png"), matrix, names,
                                f"{split}: OA {result['overall_accuracy']:.3f}, mIoU {result['miou']:.3f} "
                                "(rows true, columns predicted)")
        flat = {k: float(v) for k, v in result.items() if not isinstance(v, dict)}
        flat.update({f"iou/{n}": v for n, v in result["iou"].items()})
        flat.update({f"f1/{n}": v for n, v in result["f1"].items()})
        return flat


def build(config: TaskMetricsConfig) -> TaskMetricsEvaluator:
    return TaskMetricsEvaluator(config)
