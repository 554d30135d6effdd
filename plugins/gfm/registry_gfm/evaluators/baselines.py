"""``baselines``: the finetuned pipeline's scores next to (b) the same head on a randomly initialised encoder
and (c) a per-pixel random forest on the bands, all on the same chips of the same spatial split.

(b) is the pipeline's own config without ``[weights]`` (and without evaluators), with the data normalised
exactly as the finetuned run (its mean / std pinned), trained for the same steps into
``<run>/baseline-random-init``: what the pretraining is worth. (c) is the classic remote-sensing baseline:
scikit-learn's ``RandomForestClassifier`` on each pixel's normalised band values, fitted on labelled pixels
drawn evenly from the train split's first chips.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from registry_core.atomic import write_text
from registry_gfm.batches import in_run_dir
from registry_gfm.evaluators._confusion import confusion, scores
from registry_gfm.evaluators.specs import BaselinesConfig
from registry_gfm.evaluators.task_metrics import class_names_of, split_confusion

__all__ = ["BaselinesEvaluator", "build", "pixel_table"]

NAME = "baselines"
#: The scores shown side by side.
HEADLINE = ("miou", "overall_accuracy", "macro_f1")


def _raw(dataset: Any, index: int) -> dict[str, Any]:
    raw = getattr(dataset, "raw", None)
    if not callable(raw):
        raise TypeError(f"{NAME}: the random forest needs raw chips (a zarr-chips dataset with raw(index))")
    item: dict[str, Any] = raw(index)
    return item


def pixel_table(dataset: Any, chips: range, ignore: int, per_chip: int | None, seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Labelled pixels of ``chips`` as ``(n, frames·bands)`` features and ``(n,)`` labels; ``per_chip`` draws
    at most that many from each chip (None: all)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in chips:
        item = _raw(dataset, i)
        pixels = item["pixels"].numpy()  # (T, C, H, W), normalised
        label = item["label"].numpy()
        if label.ndim != 2:
            raise ValueError(f"{NAME}: the random forest needs segmentation labels (a class per pixel)")
        t, c, h, w = pixels.shape
        feats = pixels.reshape(t * c, h * w).T
        flat = label.reshape(-1)
        where = np.flatnonzero(flat != ignore)
        if per_chip is not None and len(where) > per_chip:
            where = np.sort(rng.choice(where, per_chip, replace=False))
        xs.append(feats[where])
        ys.append(flat[where])
    return np.concatenate(xs), np.concatenate(ys)


class BaselinesEvaluator:
    """``evaluate(pipeline, split)``: ``miou`` ... of the pipeline, ``random_init/...`` and ``random_forest/...``."""

    def __init__(self, config: BaselinesConfig) -> None:
        self.config = config
        self.table: dict[str, dict[str, Any]] = {}

    def evaluate(self, pipeline: Any, split: str = "val") -> dict[str, float]:
        cfg = self.config
        objective = pipeline.objective
        k, ignore = int(objective.num_classes), int(objective.ignore_index)
        names = class_names_of(pipeline, k)
        table = {"finetuned": scores(split_confusion(pipeline, split, cfg.batch_size), names)}
        if cfg.random_init:
            table["random_init"] = self._random_init(pipeline, split, names)
        if cfg.random_forest:
            table["random_forest"] = self._forest(pipeline, split, k, ignore, names)
        self.table = table
        if cfg.out:
            self._write(pipeline, table)
        out: dict[str, float] = {}
        for row, result in table.items():
            prefix = "" if row == "finetuned" else f"{row}/"
            out.update({f"{prefix}{key}": float(result[key]) for key in HEADLINE})
        return out

    def _random_init(self, pipeline: Any, split: str, names: list[str]) -> dict[str, Any]:
        from registry_core import compose

        config = pipeline.to_config()  # the data's mean / std are pinned: normalised as the finetuned run
        config.pop("weights", None)
        config.pop("evaluators", None)
        config["name"] = f"{config.get('name', 'pipeline')}-random-init"
        baseline = compose(config, pipeline.registry)
        run_dir = getattr(pipeline, "run_dir", None)
        out = Path(run_dir) / "baseline-random-init" if run_dir is not None else None
        if out is None:
            import tempfile

            out = Path(tempfile.mkdtemp(prefix="baseline-random-init-"))
        # A second training loop follows: say what it is, so its progress does not read as the run starting over.
        sys.stderr.write(f"baselines: training the same model from random init, for comparison, into {out}\n")
        sys.stderr.flush()
        baseline.fit(out)
        baseline.save(out)
        return scores(split_confusion(baseline, split, self.config.batch_size), names)

    def _forest(self, pipeline: Any, split: str, k: int, ignore: int, names: list[str]) -> dict[str, Any]:
        from sklearn.ensemble import RandomForestClassifier

        cfg = self.config
        train = pipeline.data.dataset("train")
        chips = range(min(cfg.train_chips, len(train)))
        x, y = pixel_table(train, chips, ignore, math.ceil(cfg.train_pixels / len(chips)), cfg.seed)
        forest = RandomForestClassifier(n_estimators=cfg.trees, random_state=cfg.seed, n_jobs=-1)
        forest.fit(x, y)
        evaluated = pipeline.data.dataset(split)
        matrix = np.zeros((k, k), np.int64)
        for start in range(0, len(evaluated), 64):  # the same chips the pipeline was scored on
            vx, vy = pixel_table(evaluated, range(start, min(start + 64, len(evaluated))), ignore, None, cfg.seed)
            if len(vy):
                matrix += confusion(forest.predict(vx), vy, k, ignore)
        result = scores(matrix, names)
        result["train_pixels"] = len(y)
        return result

    def _write(self, pipeline: Any, table: dict[str, dict[str, Any]]) -> None:
        assert self.config.out is not None
        text = json.dumps(table, indent=2, allow_nan=True).replace("NaN", "null")
        write_text(in_run_dir(pipeline, self.config.out), text + "\n")


def build(config: BaselinesConfig) -> BaselinesEvaluator:
    return BaselinesEvaluator(config)
