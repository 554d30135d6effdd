"""A few labels go far? Macro-F1 of the docstring-family task (tests/data/stdlib_docstrings, 8 classes) on one
held-out split, at 16, 64, 256 labels per class and all of them: gpt-tiny's pretrained model with a head (frozen),
the same with LoRA adapters, the same model from random init (fully trained), and TF-IDF + logistic regression.

Needs runs/gpt-tiny (make demo). Every neural row trains with the settings of examples/cls-tiny.toml for
``--steps`` steps (300 by default; the demo's recipe trains 200 to keep ``make demo`` short); prints one table
and the trainable-parameter count of each setting.

    .venv/bin/python bench/llm_few_labels.py            # about 15 minutes on 2 CPU cores
    .venv/bin/python bench/llm_few_labels.py --steps 100 --labels 16 64
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from registry_core import compose

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cls-tiny.toml"
SETTINGS = {
    "pretrained + head": {"objective": {"train": "head"}},
    "pretrained + LoRA": {"objective": {"train": "lora"}},
    "random init (full)": {"objective": {"train": "full"}, "weights": None},
}


def config_for(base: dict[str, Any], setting: dict[str, Any], labels: int | None, steps: int) -> dict[str, Any]:
    cfg = copy.deepcopy(base)
    cfg["data"]["labels_per_class"] = labels
    cfg["train"].update(steps=steps, eval_every=0, log_every=max(steps, 1))
    cfg["evaluators"] = [{"use": "text-classification"}]
    for slot, options in setting.items():
        if options is None:
            cfg.pop(slot, None)
        else:
            cfg[slot].update(options)
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--labels", type=int, nargs="*", default=[16, 64, 256], help="labels per class (plus all)")
    args = parser.parse_args()
    if not (ROOT / "runs" / "gpt-tiny" / "model.safetensors").is_file():
        print("skipped: runs/gpt-tiny is missing (make demo trains it)")
        return
    base = tomllib.loads(EXAMPLE.read_text())
    base["data"]["path"] = str(ROOT / base["data"]["path"])
    base["tokenizer"]["path"] = str(ROOT / base["tokenizer"]["path"])
    base["weights"]["path"] = str(ROOT / base["weights"]["path"])
    rows: dict[str, dict[str, float]] = {}
    trainable: dict[str, int] = {}
    budgets: list[int | None] = [*args.labels, None]
    for labels in budgets:
        column = "all" if labels is None else str(labels)
        for name, setting in SETTINGS.items():
            pipeline = compose(config_for(base, setting, labels, args.steps))
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                pipeline.fit(Path(tmp) / "run")
                took = time.perf_counter() - t0
            scores = pipeline.evaluate("val")["llm:text-classification"]
            rows.setdefault(name, {})[column] = scores["macro_f1"]
            trainable[name] = sum(p.numel() for p in pipeline.model.parameters() if p.requires_grad)
            print(f"{column:>4} labels/class  {name:20} macro-F1 {scores['macro_f1']:.3f}  ({took:.0f} s)", flush=True)
        tfidf = compose(config_for(base, {"objective": {"train": "head"}}, labels, 1))
        tfidf.build()
        from registry_llm.evaluators.classification import TfidfBaseline
        from registry_llm.evaluators.specs import TfidfBaselineConfig

        result = TfidfBaseline(TfidfBaselineConfig()).evaluate(tfidf, "val")
        rows.setdefault("TF-IDF + logistic regression", {})[column] = result["macro_f1"]
        train_n = len(tfidf.data.splits()["train"][1])
        val_n = len(tfidf.data.splits()["val"][1])
        print(f"{column:>4} labels/class  TF-IDF + LR          macro-F1 {result['macro_f1']:.3f}  "
              f"(train {train_n}, val {val_n})", flush=True)
    columns = ["all" if b is None else str(b) for b in budgets]
    print()
    print("| setting | trainable params | " + " | ".join(f"{c} / class" for c in columns) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in columns) + " |")
    for name, values in rows.items():
        params = f"{trainable[name]:,}" if name in trainable else "-"
        print(f"| {name} | {params} | " + " | ".join(f"{values[c]:.3f}" for c in columns) + " |")
    print(f"\nmacro-F1 on the same held-out split (20% of each class, seed 0); {args.steps} steps of batch 32 each")


if __name__ == "__main__":
    main()
