"""The ``few-labels`` evaluator on real labels (tests/data/stdlib_docstrings): its budgets are the data source's own
``labels_per_class`` subsets, its TF-IDF row at all labels is the ``tfidf-baseline`` evaluator's figure, its probe
reads the backbone with LoRA switched off, and a fully finetuned run is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from registry_core import compose, get_registry
from registry_llm.adapters import LoRALinear, add_lora, lora_disabled
from registry_llm.evaluators.few_labels import first_per_class

ROOT = Path(__file__).resolve().parents[3]
DOCSTRINGS = ROOT / "tests" / "data" / "stdlib_docstrings" / "docstrings.jsonl"
CLASSES = ["text", "numbers", "files", "network", "concurrency", "data_formats", "datetime", "introspection"]


def classifier(train: str) -> dict[str, object]:
    return {
        "data": {"use": "text-labels", "path": str(DOCSTRINGS), "classes": CLASSES, "seq_len": 48},
        "tokenizer": {"use": "bpe", "vocab_size": 400},
        "positional": {"use": "learned"},
        "backbone": {"use": "gpt", "embed_dim": 32, "depth": 1, "heads": 2, "max_positions": 48, "dropout": 0.0},
        "objective": {"use": "classify", "train": train},
        "head": {"use": "sequence-classification"},
        "evaluators": [{"use": "few-labels", "labels_per_class": [4, 16, 1000]}, {"use": "tfidf-baseline"}],
        "train": {"steps": 1, "batch_size": 8, "device": "cpu", "seed": 0},
    }


@pytest.mark.parametrize("k", [1, 4, 16])
def test_budgets_are_the_sources_own_labels_per_class_subsets(k: int) -> None:
    reg = get_registry()
    full = reg.build("data_source", "text-labels", path=str(DOCSTRINGS), classes=CLASSES).splits()["train"]
    few = reg.build("data_source", "text-labels", path=str(DOCSTRINGS), classes=CLASSES,
                    labels_per_class=k).splits()["train"]
    picked = first_per_class(full[1], k)
    assert [full[0][i] for i in picked] == few[0] and [full[1][i] for i in picked] == few[1]
    assert first_per_class(full[1], None).tolist() == list(range(len(full[1])))


def test_the_curve_ends_at_the_tfidf_baseline_and_skips_budgets_past_every_class() -> None:
    pipeline = compose(classifier("lora"))
    pipeline.build()
    found = pipeline.evaluate("val")
    curve, baseline = found["llm:few-labels"], found["llm:tfidf-baseline"]
    texts = pipeline.data.splits()["train"][0]
    assert curve["labels_per_class"] == [4, 16, None]  # 1000 is more than any class has: the same as all
    assert curve["train_texts"] == [4 * len(CLASSES), 16 * len(CLASSES), len(texts)]
    assert curve["tfidf_macro_f1"][-1] == round(baseline["macro_f1"], 4)
    assert all(0.0 <= f <= 1.0 for f in curve["probe_macro_f1"] + curve["tfidf_macro_f1"])
    assert curve["tfidf_macro_f1"][0] < curve["tfidf_macro_f1"][-1]  # 4 labels per class are far from all of them
    assert curve["features"] == 32


def test_lora_disabled_gives_the_base_function_back() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    x = torch.randn(5, 8)
    base = net(x)
    add_lora(net, ["0", "2"], rank=2, alpha=4.0)
    for layer in net.modules():
        if isinstance(layer, LoRALinear):
            torch.nn.init.normal_(layer.lora_B.weight)  # trained adapters: the function changed
    adapted = net(x)
    assert not torch.allclose(adapted, base)
    with lora_disabled(net) as count:
        assert count == 2 and torch.equal(net(x), base)
    assert torch.equal(net(x), adapted)
    with pytest.raises(RuntimeError), lora_disabled(net):
        raise RuntimeError("the adapters come back after an error too")
    assert torch.equal(net(x), adapted)


def test_a_fully_finetuned_backbone_is_refused() -> None:
    pipeline = compose(classifier("full"))
    pipeline.build()
    with pytest.raises(ValueError, match="train = 'full' changed; use it with train = 'head' or 'lora'"):
        pipeline.evaluate("val")
