"""``text-run`` loads a text run's embedding, positions and backbone into a classifier (and refuses what is not a
text run); the classification scores agree with scikit-learn's; a run's summary holds them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from registry_core import ConfigError, compose
from registry_llm.evaluators.classification import scores

ROOT = Path(__file__).resolve().parents[3]
TRANSLATIONS = ROOT / "tests" / "data" / "translations" / "documents.jsonl"
CLASSES = ["en", "de", "fr", "es", "it", "nl", "pl", "pt"]
BACKBONE = {"use": "gpt", "embed_dim": 32, "depth": 2, "heads": 2, "max_positions": 64, "dropout": 0.0}


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short next-token run on the translations (the 'pretraining'), saved."""
    out = tmp_path_factory.mktemp("lm") / "run"
    pipeline = compose({
        "data": {"use": "text-shards", "paths": [str(TRANSLATIONS)], "seq_len": 32, "quality_filter": False},
        "tokenizer": {"use": "bpe", "vocab_size": 300}, "positional": {"use": "rope"}, "backbone": BACKBONE,
        "objective": {"use": "next-token"},
        "train": {"steps": 5, "batch_size": 8, "lr": 3e-3, "device": "cpu"},
    })
    pipeline.run(out)
    return out


def classifier(run: Path, **extra: object) -> dict[str, object]:
    return {
        "data": {"use": "text-labels", "path": str(TRANSLATIONS), "label_field": "language", "classes": CLASSES,
                 "seq_len": 64},
        "tokenizer": {"use": "bpe", "path": str(run / "tokenizer" / "tokenizer.json")},
        "positional": {"use": "rope"}, "backbone": BACKBONE,
        "weights": {"use": "text-run", "path": str(run)},
        "objective": {"use": "classify", "train": "lora", "lora_rank": 2},
        "head": {"use": "sequence-classification"},
        "evaluators": [{"use": "text-classification"}, {"use": "tfidf-baseline"}],
        "train": {"steps": 4, "batch_size": 8, "lr": 3e-3, "device": "cpu"},
        **extra,
    }


def test_the_run_s_backbone_is_what_the_classifier_starts_from(lm_run: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    pipeline = compose(classifier(lm_run)).build()
    saved = load_file(str(lm_run / "model.safetensors"))
    ours = dict(pipeline.model.parts.backbone.named_parameters())
    assert torch.equal(ours["blocks.1.attn.qkv.weight"], saved["backbone.blocks.1.attn.qkv.weight"])
    assert torch.equal(pipeline.parts.embed.weight, saved["embed.weight"])
    result = pipeline.run(tmp_path / "cls")
    summary = json.loads((tmp_path / "cls" / "summary.json").read_text())
    assert result.step == 4
    metrics = summary["evaluators"]["llm:text-classification"]
    assert len(metrics["confusion"]) == 8 and sum(map(sum, metrics["confusion"])) == 16  # 2 of 8 per class held out
    assert 0.0 <= summary["evaluators"]["llm:tfidf-baseline"]["macro_f1"] <= 1.0


def test_text_run_refuses_a_folder_that_is_not_a_text_run(tmp_path: Path, lm_run: Path) -> None:
    with pytest.raises(ConfigError, match=r"has no pipeline.toml and model.safetensors"):
        compose(classifier(tmp_path))
    other = tmp_path / "vit"
    other.mkdir()
    (other / "model.safetensors").write_bytes((lm_run / "model.safetensors").read_bytes())
    (other / "pipeline.toml").write_text('[backbone]\nuse = "gfm:vit"\n')
    with pytest.raises(ConfigError, match=r"trained backbone 'gfm:vit'; text-run loads a gpt or bert run"):
        compose(classifier(other))


def test_a_backbone_of_another_shape_names_the_tensors(lm_run: Path) -> None:
    cfg = classifier(lm_run)
    cfg["backbone"] = {**BACKBONE, "depth": 3}
    with pytest.raises(Exception, match=r"does not fit the model: .*tensor\(s\) of the model's encoder are missing: "
                                        r"backbone.blocks.2"):
        compose(cfg).build()


def test_scores_agree_with_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, 200)
    predicted = np.where(rng.random(200) < 0.6, truth, rng.integers(0, 5, 200))
    predicted[predicted == 4] = 3  # class 4 is never predicted: its F1 is 0
    ours = scores(truth, predicted, 5)
    assert ours["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert ours["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro", labels=range(5),
                                                      zero_division=0))
    assert ours["confusion"] == confusion_matrix(truth, predicted, labels=range(5)).tolist()


def test_lora_adapters_save_apart_and_load_onto_the_base_run(lm_run: Path, tmp_path: Path) -> None:
    from registry_core import Pipeline

    trained = compose(classifier(lm_run))
    trained.run(tmp_path / "cls")
    adapters = tmp_path / "cls" / "adapters.safetensors"
    assert adapters.stat().st_size < (tmp_path / "cls" / "model.safetensors").stat().st_size / 4
    lock = json.loads((tmp_path / "cls" / "pipeline.lock.json").read_text())
    assert "model:adapters.safetensors" in lock["files"]
    again = compose(classifier(lm_run, weights={"use": "text-run", "path": str(lm_run),
                                                "adapters": str(tmp_path / "cls")})).build()
    ids = trained.data.dataset("val").ids
    saved = Pipeline.load(tmp_path / "cls")
    with torch.no_grad():
        want = saved.objective.logits(saved.parts, ids)
        got = again.objective.logits(again.parts, ids)
    assert torch.equal(want, got)
    wider = classifier(lm_run, weights={"use": "text-run", "path": str(lm_run), "adapters": str(tmp_path / "cls")})
    wider["objective"] = {"use": "classify", "train": "lora", "lora_rank": 4}
    with pytest.raises(Exception, match=r"the adapters in .*adapters.safetensors do not fit this model: "
                                        r"backbone.blocks.0.attn.proj.lora_A.weight is \(2, 32\) there, \(4, 32\) here"):
        compose(wider).build()


def test_a_bidirectional_classifier_pools_its_first_token_and_ignores_padding() -> None:
    cfg = {
        "data": {"use": "text-labels", "path": str(TRANSLATIONS), "label_field": "language", "classes": CLASSES,
                 "seq_len": 64},
        "tokenizer": {"use": "wordpiece", "vocab_size": 300}, "positional": {"use": "learned"},
        "backbone": {"use": "bert", "embed_dim": 32, "depth": 2, "heads": 2, "max_positions": 96, "dropout": 0.0},
        "objective": {"use": "classify", "train": "full"}, "head": {"use": "sequence-classification"},
        "train": {"steps": 2, "batch_size": 8, "device": "cpu"},
    }
    pipeline = compose(cfg).build()
    assert pipeline.parts.head.pool == "first"
    ids = pipeline.data.dataset("val").ids[:2].clone()
    pad = pipeline.tokenizer.pad_id
    short = ids.clone()
    short[:, 20:] = pad
    longer = torch.cat([short, torch.full((2, 16), pad)], dim=1)  # more padding changes nothing
    pipeline.model.eval()
    with torch.no_grad():
        a = pipeline.objective.logits(pipeline.parts, short)
        b = pipeline.objective.logits(pipeline.parts, longer)
    assert torch.allclose(a, b, atol=1e-6)
