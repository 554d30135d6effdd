"""Text classification through the CLI on real labels (tests/data/stdlib_docstrings: the standard library's
docstrings labelled by module family): a short run learns and exports as GPT2ForSequenceClassification; the
labels-per-class budget; bad labels and bad LoRA settings are one error line with no run left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry_core import get_registry
from registry_core.testing import one_error_line, run_cli

ROOT = Path(__file__).resolve().parents[3]
DOCSTRINGS = ROOT / "tests" / "data" / "stdlib_docstrings" / "docstrings.jsonl"
CLASSES = ["text", "numbers", "files", "network", "concurrency", "data_formats", "datetime", "introspection"]


def pipeline_file(folder: Path, data: str = "", objective: str = "", path: Path = DOCSTRINGS,
                  classes: list[str] = CLASSES) -> Path:
    toml = folder / "cls.toml"
    toml.write_text(
        f'[data]\nuse = "text-labels"\npath = "{path}"\nclasses = {json.dumps(classes)}\nseq_len = 64\n{data}\n'
        '[tokenizer]\nuse = "bpe"\nvocab_size = 512\n[positional]\nuse = "learned"\n'
        '[backbone]\nuse = "gpt"\nembed_dim = 32\ndepth = 2\nheads = 2\nmax_positions = 64\n'
        f'[objective]\nuse = "classify"\n{objective}\n[head]\nuse = "sequence-classification"\n'
        '[train]\nsteps = 30\nbatch_size = 16\nlr = 0.003\nlog_every = 10\neval_every = 30\n')
    return toml


def test_a_short_run_learns_and_exports_for_transformers(tmp_path: Path) -> None:
    out = run_cli("run", str(pipeline_file(tmp_path, objective='train = "full"')), "--out", "run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in records if "val_loss" in r]
    assert val[-1] < val[0], val  # from ln(8) = 2.08 at step 0
    exported = run_cli("export", "run", "--to", "hf-gpt2", "exported", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    config = json.loads((tmp_path / "exported" / "config.json").read_text())
    assert config["architectures"] == ["GPT2ForSequenceClassification"] and config["id2label"]["6"] == "datetime"


def test_labels_per_class_caps_training_and_keeps_validation() -> None:
    reg = get_registry()
    full = reg.build("data_source", "text-labels", path=str(DOCSTRINGS), classes=CLASSES)
    few = reg.build("data_source", "text-labels", path=str(DOCSTRINGS), classes=CLASSES, labels_per_class=4)
    assert few.splits()["val"] == full.splits()["val"]
    labels = few.splits()["train"][1]
    assert len(labels) == 4 * len(CLASSES) and all(labels.count(k) == 4 for k in range(len(CLASSES)))


@pytest.mark.parametrize(("data", "objective", "classes", "message"), [
    ("", "", CLASSES[:-1], "has labels 'introspection' that option 'classes' does not name"),
    ("", "", [*CLASSES, "graphics"], "class 'graphics' has no text in"),
    ('label_field = "family"', "", CLASSES, "has no field 'family'; its fields are label, module, object, text"),
    ("", 'train = "lora"\nlora_rank = 0', CLASSES, "LoRA rank must be at least 1, got 0"),
    ("", 'train = "lora"\nlora_rank = 64', CLASSES, "LoRA rank 64 is larger than layer blocks.0.attn.qkv (32 -> 96); "
                                                    "expected at most 32"),
    ("", 'train = "lora"\nlora_targets = ["attn.q"]', CLASSES, "LoRA target 'attn.q' matches no linear layer; the "
                                                               "backbone's are attn.proj, attn.qkv, mlp.fc, mlp.proj"),
], ids=["unknown-label", "empty-class", "no-label-field", "rank-0", "rank-too-large", "no-target"])
def test_bad_labels_and_lora_settings_are_one_line(tmp_path: Path, data: str, objective: str, classes: list[str],
                                                   message: str) -> None:
    toml = pipeline_file(tmp_path, data, objective, classes=classes)
    line = one_error_line(run_cli("run", str(toml), "--out", "run", cwd=tmp_path))
    assert message in line, line
    assert not (tmp_path / "run").exists()
