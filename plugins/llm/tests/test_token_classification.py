"""Token classification on real labels: standard-library functions tagged by Python's own tokenize module
(tests/data/python_tokens: keyword, name, number, string, comment, operator). Each BPE token takes the label of the
span it starts in; a short run beats always answering the commonest label; bad spans are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from registry_core import compose

ROOT = Path(__file__).resolve().parents[3]
SNIPPETS = ROOT / "tests" / "data" / "python_tokens" / "snippets.jsonl"
CLASSES = ["keyword", "name", "number", "string", "comment", "operator"]


def tagger(path: Path = SNIPPETS, classes: list[str] = CLASSES) -> dict[str, object]:
    return {
        "data": {"use": "token-labels", "path": str(path), "classes": classes, "seq_len": 128},
        "tokenizer": {"use": "bpe", "vocab_size": 512},
        "positional": {"use": "learned"},
        "backbone": {"use": "bert", "embed_dim": 48, "depth": 2, "heads": 4, "max_positions": 128, "dropout": 0.0},
        "objective": {"use": "classify", "train": "full"},
        "head": {"use": "token-classification"},
        "evaluators": [{"use": "text-classification"}],
        "train": {"steps": 60, "batch_size": 16, "lr": 3e-3, "warmup_steps": 5, "log_every": 20, "device": "cpu"},
    }


def test_tokens_take_the_label_of_their_span() -> None:
    pipeline = compose(tagger()).build()
    data = pipeline.data.dataset("train")
    text, _spans = pipeline.data.splits()["train"][0]
    enc = pipeline.tokenizer.hf.encode(text, add_special_tokens=False)
    for t, (a, b) in enumerate(enc.offsets[:128]):
        piece = text[a:b]
        label = int(data.labels[0, t])
        if piece.strip() == "def":
            assert CLASSES[label] == "keyword"
        if piece.isspace():
            assert label == -100
    assert int((data.labels[0] != -100).sum()) > 10


def test_a_short_run_beats_the_commonest_label(tmp_path: Path) -> None:
    pipeline = compose(tagger())
    result = pipeline.run(tmp_path / "run")
    metrics = result.evaluators["llm:text-classification"]
    val = pipeline.data.dataset("val").labels
    scored = val[val != -100]
    commonest = float(torch.bincount(scored).max()) / scored.numel()
    assert metrics["accuracy"] > commonest + 0.1, (metrics["accuracy"], commonest)
    assert len(metrics["confusion"]) == 6


def test_an_unknown_span_label_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    row = json.loads(SNIPPETS.read_text().splitlines()[0])
    row["spans"][0][2] = "decorator"
    bad.write_text(json.dumps(row) + "\n" + SNIPPETS.read_text())
    with pytest.raises(Exception, match=r"bad.jsonl line 1 has label 'decorator', which option 'classes' does not name"):
        compose(tagger(bad)).build()
