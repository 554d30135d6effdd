"""registry-llm's report rows of finetuned text runs: a classifier's confusion matrix and few-label curve, and an
instruction-tuned model's answers before and after tuning.

The figures read what the evaluators wrote to ``summary.json`` (``text-classification``, ``tfidf-baseline``,
``few-labels``, ``instruction-eval``); only the "before" answers need a model: the base run named in the run's
``[weights]`` table, loaded and prompted through the run's own chat template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from registry_core.report import ReportFigure, ReportRun, ReportTable

__all__ = ["is_task_run", "task_figures", "task_key_figures", "task_tables"]

#: Held-out pairs shown before / after instruction tuning.
SHOWN_PAIRS: Final = 3
#: Longest text of a table cell, in characters (the rest is cut with an ellipsis).
CELL_CHARS: Final = 320

CLASSIFY: Final = ("llm:classify",)
INSTRUCT: Final = ("llm:instruct",)


def _objective(run: ReportRun) -> str:
    return str(run.slot("objective").get("use", ""))


def is_task_run(run: ReportRun) -> bool:
    """A run finetuned for a task (classification or instructions): its rows replace the language-model figures."""
    return _objective(run) in CLASSIFY + INSTRUCT


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def task_key_figures(run: ReportRun) -> dict[str, float]:
    """Accuracy and macro-F1 of a classifier (and the TF-IDF baseline's), response loss and token F1 of a tuned model."""
    out: dict[str, float] = {}
    wanted = (("llm:text-classification", "macro_f1", "macro-F1"), ("llm:text-classification", "accuracy", "accuracy"),
              ("llm:tfidf-baseline", "macro_f1", "TF-IDF macro-F1"),
              ("llm:instruction-eval", "response_loss", "response loss"),
              ("llm:instruction-eval", "token_f1", "token F1"), ("llm:instruction-eval", "exact_match", "exact match"))
    for evaluator, key, label in wanted:
        value = _number(run.evaluator(evaluator).get(key))
        if value is not None:
            out[label] = value
    return out


def _class_names(run: ReportRun, count: int) -> list[str]:
    names = run.slot("data").get("classes")
    if isinstance(names, list) and len(names) == count:
        return [str(n) for n in names]
    return [str(i) for i in range(count)]


def _confusion(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """Rows: true class, columns: predicted; colour is the row's share (recall), the text the count."""
    import numpy as np

    from registry_core.report.figures import confusion_figure

    found = run.evaluator("llm:text-classification")
    matrix = np.asarray(found.get("confusion") or [], dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        return []
    names = _class_names(run, matrix.shape[0])
    image = confusion_figure(out_dir / f"{run.label}-confusion.png", matrix, names,
                             title=f"{run.name}: confusion matrix")
    f1 = found.get("f1") if isinstance(found.get("f1"), list) else []
    weakest = sorted(zip(f1, names))[:2] if f1 and len(f1) == len(names) else []
    worst = "; weakest classes " + ", ".join(f"{n} (F1 {v:.2f})" for v, n in weakest) if weakest else ""
    caption = (f"{int(matrix.sum())} held-out texts by true class (rows) and predicted class (columns), the count in "
               f"each cell, colour the share of the row (recall); macro-F1 {float(found.get('macro_f1', 0.0)):.3f}, "
               f"accuracy {float(found.get('accuracy', 0.0)):.3f}{worst}.")
    return [ReportFigure("Text classification", f"{run.label}: confusion matrix", caption, image)]


def _few_labels(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """Macro-F1 against training texts: the linear probe, TF-IDF + LR, and the run's own classifier."""
    from registry_core.report.figures import line_chart

    found = run.evaluator("llm:few-labels")
    budgets, texts = found.get("labels_per_class"), found.get("train_texts")
    if not isinstance(budgets, list) or not isinstance(texts, list) or len(budgets) != len(texts) or not texts:
        return []
    series: dict[str, tuple[list[float], list[float]]] = {}
    for key, label in (("probe_macro_f1", "linear probe on the frozen pretrained features"),
                       ("tfidf_macro_f1", "TF-IDF + logistic regression")):
        values = found.get(key)
        if isinstance(values, list) and len(values) == len(texts):
            series[label] = ([float(x) for x in texts], [float(v) for v in values])
    own = _number(run.evaluator("llm:text-classification").get("macro_f1"))
    per_class = run.slot("data").get("labels_per_class")
    if own is not None:
        at = next((float(x) for b, x in zip(budgets, texts) if b == per_class), float(texts[-1]))
        train = str(run.slot("objective").get("train", "finetuned"))
        series[f"this run ({train})"] = ([at], [own])
    ticks = [(float(x), f"{x}\n({'all' if b is None else f'{b}/class'})") for b, x in zip(budgets, texts)]
    image = line_chart(out_dir / f"{run.label}-few-labels.png", series, title=f"{run.name}: a few labels",
                       xlabel="training texts (labels per class)", ylabel="held-out macro-F1", log_x=True,
                       xticks=ticks)
    caption = ("Macro-F1 on the same held-out texts with the first k labelled texts of every class: a linear probe "
               "(logistic regression) on the backbone's frozen features, TF-IDF + logistic regression on the words, "
               "and this run's classifier. bench/llm_few_labels.py trains the head, LoRA and a random-init model at "
               "every budget.")
    return [ReportFigure("Text classification", f"{run.label}: macro-F1 against labels", caption, image)]


def task_figures(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """The few-label curve and confusion matrix of a classifier run (none for other runs)."""
    if _objective(run) not in CLASSIFY:
        return []
    return [*_few_labels(run, out_dir), *_confusion(run, out_dir)]


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "\u2026"


def _base_answers(run: ReportRun, prompts: Sequence[str]) -> list[str] | str:
    """The base run's greedy answers through this run's template, or why there are none (one line)."""
    weights = run.slot("weights")
    base = weights.get("path")
    if str(weights.get("use", "")) != "llm:text-run" or not isinstance(base, str):
        return "(no base run: the model was not tuned from a text run)"
    if not (Path(base) / "pipeline.toml").is_file():
        return f"(base run {base} is not here)"
    from registry_core import Pipeline
    from registry_llm.data.instruction_pairs import ChatTemplate
    from registry_llm.generation import generate

    template = ChatTemplate(str(run.slot("data").get("template", "")))
    pipeline = Pipeline.load(base)
    tokenizer, parts, objective = pipeline.tokenizer, pipeline.parts, pipeline.objective
    options = run.evaluator_options("llm:instruction-eval")
    max_new = int(options[0].get("max_new_tokens", 96)) if options else 96
    eos = getattr(tokenizer, "eos_id", None)
    answers = []
    pipeline.model.eval()
    for prompt in prompts:
        ids = tokenizer.encode(template.prompt(prompt))
        out = generate(parts, objective, ids, max_new_tokens=max_new, temperature=0.0,
                       stop_tokens=[] if eos is None else [int(eos)])
        answers.append(tokenizer.decode(out, skip_special=True))
    return answers


def task_tables(run: ReportRun) -> list[ReportTable]:
    """Held-out questions with the reference, the base model's answer and the tuned model's answer."""
    if _objective(run) not in INSTRUCT:
        return []
    found = run.evaluator("llm:instruction-eval")
    examples = [e for e in found.get("answers") or [] if isinstance(e, Mapping)][:SHOWN_PAIRS]
    if not examples:
        return []
    prompts = [str(e.get("prompt", "")) for e in examples]
    before = _base_answers(run, prompts)
    rows = []
    for i, e in enumerate(examples):
        old = before[i] if isinstance(before, list) else before
        rows.append((_cut(prompts[i]), _cut(str(e.get("reference", ""))), _cut(old), _cut(str(e.get("answer", "")))))
    caption = (f"{run.label}: greedy answers to held-out questions, before (the base run) and after instruction "
               f"tuning; over {int(_number(found.get('pairs')) or 0)} held-out pairs the tuned model's token F1 is "
               f"{float(found.get('token_f1', 0.0)):.3f}, exact match {float(found.get('exact_match', 0.0)):.3f}")
    return [ReportTable("Instruction tuning", caption, ("question", "reference", "before tuning", "after tuning"),
                        tuple(rows))]
