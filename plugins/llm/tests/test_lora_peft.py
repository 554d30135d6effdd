"""LoRA finetuning of a GPT-2-shaped classifier, exported in peft's format: ``peft`` loads the adapters onto the
exported transformers model (GPT2ForSequenceClassification) and gives our logits; the merged export too. The
classifier is trained first (non-trivial adapters and head) on real labelled text: Django's messages in eight
languages (tests/data/translations)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from registry_core import compose

ROOT = Path(__file__).resolve().parents[3]
CLASSES = ["en", "de", "fr", "es", "it", "nl", "pl", "pt"]


def classifier(train: str = "lora", **objective: object) -> dict[str, object]:
    return {
        "data": {"use": "text-labels", "path": str(ROOT / "tests" / "data" / "translations" / "documents.jsonl"),
                 "label_field": "language", "classes": CLASSES, "seq_len": 160, "val_fraction": 0.25},
        "tokenizer": {"use": "bpe", "vocab_size": 400},
        "positional": {"use": "learned"},
        "backbone": {"use": "gpt", "embed_dim": 32, "depth": 2, "heads": 4, "max_positions": 160, "dropout": 0.0},
        "objective": {"use": "classify", "train": train, "lora_rank": 4, "lora_alpha": 8.0, **objective},
        "head": {"use": "sequence-classification"},
        "train": {"steps": 15, "batch_size": 8, "lr": 1e-2, "log_every": 5, "device": "cpu", "seed": 0},
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> object:
    pipeline = compose(classifier())
    pipeline.fit(tmp_path_factory.mktemp("lora") / "run")
    return pipeline


def _batch(pipeline: object) -> torch.Tensor:
    val = pipeline.data.dataset("val")  # type: ignore[attr-defined]
    return torch.stack([val[i]["input_ids"] for i in range(len(val))])


def test_only_the_adapters_and_the_head_train(trained: object) -> None:
    named = dict(trained.model.named_parameters())  # type: ignore[attr-defined]
    trainable = sorted(n for n, p in named.items() if p.requires_grad)
    assert trainable and all(".lora_A." in n or ".lora_B." in n or n.startswith("head.") for n in trainable)
    layers = {n.rsplit(".lora_", 1)[0] for n in trainable if ".lora_" in n}
    assert len(layers) == 2 * 4  # 2 blocks x (qkv, attn proj, fc, mlp proj)
    b = [p for n, p in named.items() if ".lora_B." in n]
    assert all(float(p.detach().abs().max()) > 0 for p in b)  # trained away from their zero start


def test_peft_loads_the_adapters_onto_the_exported_model_and_gives_our_logits(trained: object,
                                                                              tmp_path: Path) -> None:
    peft = pytest.importorskip("peft")
    from transformers import GPT2ForSequenceClassification

    from registry_llm.adapters.peft_format import export_classifier

    out = export_classifier(trained, tmp_path / "export")
    ids = _batch(trained)
    objective, parts = trained.objective, trained.parts  # type: ignore[attr-defined]
    trained.model.eval()  # type: ignore[attr-defined]
    with torch.no_grad():
        ours = objective.logits(parts, ids)
        base = GPT2ForSequenceClassification.from_pretrained(out / "peft" / "base")
        model = peft.PeftModel.from_pretrained(base, out / "peft" / "adapter").eval()
        theirs = model(input_ids=ids).logits
        merged = GPT2ForSequenceClassification.from_pretrained(out).eval()(input_ids=ids).logits
        with model.disable_adapter():  # the base alone: the adapters (and head) peft loaded are what matches ours
            plain = model(input_ids=ids).logits
    assert int((ids == trained.tokenizer.pad_id).sum()) > 0  # type: ignore[attr-defined]  # padded rows
    print(f"peft max |diff| {float((ours - theirs).abs().max()):.2e}, merged {float((ours - merged).abs().max()):.2e}, logits up to {float(ours.abs().max()):.2f}")
    assert float((ours - theirs).abs().max()) < 1e-5, float((ours - theirs).abs().max())
    assert float((ours - merged).abs().max()) < 1e-5, float((ours - merged).abs().max())
    assert float((ours - plain).abs().max()) > 1e-2
    config = json.loads((out / "peft" / "adapter" / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["task_type"]) == (4, 8.0, "SEQ_CLS")
    assert json.loads((out / "config.json").read_text())["id2label"]["1"] == "de"
