"""Land-cover scores: the confusion matrix and its OA / IoU / mIoU / F1, the task-metrics and baselines evaluators."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from registry_core import compose, get_registry
from registry_gfm.evaluators._confusion import confusion, scores, write_confusion_json
from registry_gfm.render import write_confusion_png

from ..conftest import finetune_config

NAMES = ["a", "b", "c", "d"]


def test_scores_of_a_hand_made_confusion_matrix() -> None:
    label = np.array([0, 0, 0, 1, 1, 2, 2, 2, 255, 255])
    pred = np.array([0, 0, 1, 1, 2, 2, 2, 0, 3, 1])
    cm = confusion(pred, label, 4, 255)
    assert cm.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    s = scores(cm, NAMES)
    assert s["overall_accuracy"] == pytest.approx(5 / 8)
    # IoU: a 2/(3+3-2)=0.5, b 1/(2+2-1)=1/3, c 2/(3+3-2)=0.5; d absent from labels and predictions: left out
    assert s["iou"]["a"] == pytest.approx(0.5) and s["iou"]["b"] == pytest.approx(1 / 3)
    assert math.isnan(s["iou"]["d"]) and math.isnan(s["f1"]["d"])
    assert s["miou"] == pytest.approx((0.5 + 1 / 3 + 0.5) / 3)
    assert s["f1"]["b"] == pytest.approx(2 * 1 / (2 + 2))
    assert s["macro_f1"] == pytest.approx((2 * 2 / 6 + 0.5 + 2 * 2 / 6) / 3)
    assert s["support"] == {"a": 3, "b": 2, "c": 3, "d": 0}
    never = scores(np.array([[3, 0], [2, 0]]), ["x", "y"])  # y is labelled but never predicted: IoU 0, counted
    assert never["iou"]["y"] == 0.0 and never["miou"] == pytest.approx((3 / 5 + 0) / 2)
    with pytest.raises(ValueError, match=r"labels outside 0 \.\. 3"):
        confusion(pred, np.full(10, 7), 4, 255)


def test_the_matrix_is_saved_as_json_and_png(tmp_path: Path) -> None:
    cm = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 4]])
    s = scores(cm, ["water", "forest", "developed"])
    doc = json.loads(write_confusion_json(tmp_path / "cm.json", cm, ["water", "forest", "developed"], s).read_text())
    assert doc["matrix"] == cm.tolist() and doc["classes"] == ["water", "forest", "developed"]
    assert doc["metrics"]["miou"] == pytest.approx(s["miou"])
    png = write_confusion_png(tmp_path / "cm.png", cm, ["water", "forest", "developed"])
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 3 * 56 and im.height > 3 * 56
        pixels = np.asarray(im.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 3  # cells are coloured by their share, not blank


def test_task_metrics_scores_the_val_split_and_writes_into_the_run(lsat7_store: Path, tmp_path: Path) -> None:
    p = compose(finetune_config(lsat7_store)).build()
    p.run_dir = tmp_path
    ev = get_registry().build("evaluator", "task-metrics", batch_size=8, out="cm")
    metrics = ev.evaluate(p, "val")
    assert 0.0 <= metrics["overall_accuracy"] <= 1.0 and 0.0 <= metrics["miou"] <= 1.0
    assert "iou/class 0" in metrics and metrics["pixels"] > 0
    matrix = np.array(json.loads((tmp_path / "cm.json").read_text())["matrix"])
    assert matrix.sum() == metrics["pixels"] and (tmp_path / "cm.png").is_file()
    labelled = sum(int((p.data.dataset("val")[i]["label"] != 255).sum()) for i in range(len(p.data.dataset("val"))))
    assert matrix.sum() == labelled  # every labelled val pixel scored once


def test_task_metrics_needs_an_objective_with_logits(lsat7_store: Path) -> None:
    from ..conftest import tiny_pipeline_config

    p = compose(tiny_pipeline_config(lsat7_store)).build()
    with pytest.raises(TypeError, match="gives no class scores"):
        get_registry().build("evaluator", "task-metrics").evaluate(p, "val")


def test_the_random_forest_baseline_scores_the_same_pixels(lsat7_store: Path, tmp_path: Path) -> None:
    p = compose(finetune_config(lsat7_store)).build()
    p.run_dir = tmp_path
    ev = get_registry().build("evaluator", "baselines", random_init=False, trees=10, train_pixels=2000,
                              train_chips=16, out="side.json")
    metrics = ev.evaluate(p, "val")
    assert set(metrics) == {"miou", "overall_accuracy", "macro_f1", "random_forest/miou",
                            "random_forest/overall_accuracy", "random_forest/macro_f1"}
    table = json.loads((tmp_path / "side.json").read_text())
    assert table["random_forest"]["pixels"] == table["finetuned"]["pixels"]  # the same val pixels
    assert table["random_forest"]["train_pixels"] <= 2000 + 16
    assert metrics["random_forest/overall_accuracy"] > 0.4  # the bands alone say a lot about land cover

