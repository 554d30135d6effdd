"""LoRA finetuning of a BERT-shaped classifier (post-LN, pooler, WordPiece), exported as BertForSequenceClassification
with its adapters in peft's format: the fused qkv adapter becomes query / key / value adapters, and ``peft`` loads
them onto the exported base and gives our logits; the merged export too. Trained first on real labelled text
(tests/data/translations: Django's messages in eight languages), so adapters, pooler reading and classifier are
non-trivial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from registry_core import compose
from registry_core.testing import run_cli

ROOT = Path(__file__).resolve().parents[3]
CLASSES = ["en", "de", "fr", "es", "it", "nl", "pl", "pt"]


def classifier(head: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "data": {"use": "text-labels", "path": str(ROOT / "tests" / "data" / "translations" / "documents.jsonl"),
                 "label_field": "language", "classes": CLASSES, "seq_len": 96, "val_fraction": 0.25},
        "tokenizer": {"use": "wordpiece", "vocab_size": 400},
        "positional": {"use": "learned"},
        "backbone": {"use": "bert", "embed_dim": 32, "depth": 2, "heads": 4, "max_positions": 96, "dropout": 0.0,
                     "norm": "post", "pooler": True, "type_vocab_size": 2, "layer_norm_eps": 1e-12},
        "objective": {"use": "classify", "train": "lora", "lora_rank": 4, "lora_alpha": 8.0},
        "head": {"use": "sequence-classification", "pool": "pooler", "bias": True, **(head or {})},
        "train": {"steps": 15, "batch_size": 8, "lr": 1e-2, "log_every": 5, "device": "cpu", "seed": 0},
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> object:
    pipeline = compose(classifier())
    pipeline.run(tmp_path_factory.mktemp("lora-bert") / "run")
    return pipeline


def test_peft_loads_the_split_adapters_onto_the_exported_bert_and_gives_our_logits(trained: object,
                                                                                   tmp_path: Path) -> None:
    peft = pytest.importorskip("peft")
    from transformers import AutoTokenizer, BertForSequenceClassification

    out = run_cli("export", str(trained.run_dir), "--to", "hf-bert", str(tmp_path / "export"))  # type: ignore[attr-defined]
    assert out.returncode == 0, out.stderr
    export = tmp_path / "export"
    val = trained.data.dataset("val")  # type: ignore[attr-defined]
    ids = torch.stack([val[i]["input_ids"] for i in range(len(val))])
    mask = (ids != trained.tokenizer.pad_id).long()  # type: ignore[attr-defined]
    objective, parts = trained.objective, trained.parts  # type: ignore[attr-defined]
    trained.model.eval()  # type: ignore[attr-defined]
    with torch.no_grad():
        ours = objective.logits(parts, ids)
        base = BertForSequenceClassification.from_pretrained(export / "peft" / "base")
        model = peft.PeftModel.from_pretrained(base, export / "peft" / "adapter").eval()
        theirs = model(input_ids=ids, attention_mask=mask).logits
        merged = BertForSequenceClassification.from_pretrained(export).eval()(input_ids=ids, attention_mask=mask).logits
        with model.disable_adapter():
            plain = model(input_ids=ids, attention_mask=mask).logits
    assert int((mask == 0).sum()) > 0  # padded rows
    print(f"peft max |diff| {float((ours - theirs).abs().max()):.2e}, merged {float((ours - merged).abs().max()):.2e}")
    assert float((ours - theirs).abs().max()) < 1e-5, float((ours - theirs).abs().max())
    assert float((ours - merged).abs().max()) < 1e-5, float((ours - merged).abs().max())
    assert float((ours - plain).abs().max()) > 1e-2  # the adapters matter
    config = json.loads((export / "peft" / "adapter" / "adapter_config.json").read_text())
    assert config["modules_to_save"] == ["classifier"] and not config["fan_in_fan_out"]
    adapted = {n for n, _ in model.named_modules() if n.endswith(("query", "key", "value"))}
    assert len(adapted) == 2 * 3  # every layer's query, key and value carry an adapter
    tokenizer = AutoTokenizer.from_pretrained(export)
    text = trained.data.splits()["val"][0][0]  # type: ignore[attr-defined]
    assert tokenizer(text)["input_ids"] == trained.tokenizer.encode(text)  # type: ignore[attr-defined]
    assert json.loads((export / "config.json").read_text())["id2label"]["2"] == "fr"


@pytest.mark.parametrize(("head", "message"), [
    ({"pool": "first"}, "this head pools 'first' (set pool = 'pooler' and bias = true)"),
    ({"bias": False}, "this head pools 'pooler' without a bias"),
])
def test_a_head_bert_cannot_hold_is_refused_before_writing(tmp_path: Path, head: dict[str, object],
                                                           message: str) -> None:
    cfg = classifier(head)
    cfg["train"] = {**cfg["train"], "steps": 1}  # type: ignore[dict-item]
    compose(cfg).run(tmp_path / "run")
    out = run_cli("export", str(tmp_path / "run"), "--to", "hf-bert", str(tmp_path / "export"))
    assert out.returncode == 1 and message in out.stderr, out.stderr
    assert not (tmp_path / "export").exists()


def test_pool_pooler_needs_a_backbone_with_one() -> None:
    cfg = classifier()
    cfg["backbone"] = {**cfg["backbone"], "pooler": False}  # type: ignore[dict-item]
    with pytest.raises(Exception, match="pool = 'pooler' reads BERT's pooler, and this backbone has none"):
        compose(cfg).build()
