"""A run folder loaded from anywhere reads its data's relative outputs (text-shards' shards) inside itself."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from registry_core import Pipeline, compose

WORDS = ("the", "with", "statement", "is", "used", "to", "wrap", "block", "methods", "context", "manager", "loop")


def test_a_loaded_text_run_evaluates_from_another_working_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(0)
    (tmp_path / "corpus.txt").write_text("\n\n".join(" ".join(rng.choice(WORDS) for _ in range(50)) + "."
                                                      for _ in range(80)))
    config = {
        "name": "load-anywhere",
        "data": {"use": "text-shards", "paths": [str(tmp_path / "corpus.txt")], "txt_documents": "blank-lines",
                 "seq_len": 16, "val_fraction": 0.2, "quality_filter": False},  # `out` left relative: text-shards
        "tokenizer": {"use": "bpe", "vocab_size": 300},
        "backbone": {"use": "gpt", "embed_dim": 16, "depth": 1, "heads": 2, "max_positions": 32},
        "objective": {"use": "next-token"},
        "evaluators": [{"use": "perplexity"}],
        "train": {"steps": 2, "batch_size": 4, "checkpoint_every": 0},
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    result = compose(config).run(tmp_path / "run")
    assert (tmp_path / "run" / "text-shards" / "manifest.json").is_file()

    monkeypatch.chdir(tmp_path / "b")
    loaded = Pipeline.load(tmp_path / "run", strict=True)
    again = loaded.evaluate("val")["llm:perplexity"]
    assert again["perplexity"] == pytest.approx(result.evaluators["llm:perplexity"]["perplexity"], rel=1e-6)
    assert not (tmp_path / "a" / "text-shards").exists() and not (tmp_path / "b" / "text-shards").exists()
