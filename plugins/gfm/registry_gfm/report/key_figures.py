"""The summary table's key figures of an imagery run, read from its summary.json (imports nothing heavy)."""

from __future__ import annotations

from registry_core.report import ReportRun

__all__ = ["key_figures"]

#: (label in the table, evaluator id, metric key) in the order shown.
_FIGURES = (
    ("recon MSE", "gfm:reconstruction", "mse"),
    ("recon PSNR dB", "gfm:reconstruction", "psnr"),
    ("probe acc", "gfm:linear-probe", "accuracy"),
    ("mIoU finetuned", "gfm:baselines", "miou"),
    ("mIoU random-init", "gfm:baselines", "random_init/miou"),
    ("mIoU random forest", "gfm:baselines", "random_forest/miou"),
)


def key_figures(run: ReportRun) -> dict[str, float]:
    """Reconstruction MSE / PSNR, probe accuracy and the mIoU of finetuned, random-init and random-forest
    models, for the evaluators that ran (the ``task-metrics`` mIoU when ``baselines`` did not)."""
    out: dict[str, float] = {}
    for label, evaluator, key in _FIGURES:
        value = run.evaluator(evaluator).get(key)
        if isinstance(value, int | float):
            out[label] = float(value)
    task = run.evaluator("gfm:task-metrics").get("miou")
    if "mIoU finetuned" not in out and isinstance(task, int | float):
        out["mIoU"] = float(task)
    return out
