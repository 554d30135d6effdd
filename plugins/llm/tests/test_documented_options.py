"""Documented options of the text stack that used to pass ``check`` and fail ``run`` (issue 13, section 4).

Each is tried through the real CLI in a subprocess on a small corpus cut from Python's own
``pydoc_data/topics.py``, with tokenizer files built here (Hugging Face ``tokenizers``, or by hand).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from registry_core import ConfigError, compose, get_registry
from registry_llm.tokenizers.rank_files import write_rank_file
from registry_llm.tokenizers.vocab_files import file_tokens, vocab_size_of

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TEXTS = [topics[k] for k in sorted(topics)[:12]]
SPECIALS = ["<|bos|>", "<|eos|>", "<|pad|>", "<|mask|>"]


def _pipeline_toml(tmp_path: Path, tokenizer: str = "", data: str = "", objective: str = "next-token",
                   backbone: str = "gpt", chars: int = 1500, val_fraction: float = 0.2) -> Path:
    """A tiny pipeline over ``tmp_path/corpus/*.txt`` (``chars`` of each of 12 topics); extra lines go into
    [tokenizer] and [data]."""
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    for i, text in enumerate(TEXTS):
        (corpus / f"{i}.txt").write_text(text[:chars], encoding="utf-8")
    path = tmp_path / "pipeline.toml"
    path.write_text(f"""
[data]
use = "text-shards"
paths = ["{corpus.as_posix()}/*.txt"]
out = "{(tmp_path / 'shards').as_posix()}"
seq_len = 16
val_fraction = {val_fraction}
dedup = "exact"
quality_filter = false
{data}

[tokenizer]
use = "bpe"
vocab_size = 512
{tokenizer}

[backbone]
use = "{backbone}"
embed_dim = 32
depth = 1
heads = 2
max_positions = 32

[positional]
use = "learned"

[objective]
use = "{objective}"

[train]
steps = 2
batch_size = 4
log_every = 1
eval_every = 0
""", encoding="utf-8")
    return path


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True,
                          cwd=tmp_path, check=False, timeout=600)


# -- tokenizer files built here ---------------------------------------------------------------------------


def _hf_tokenizer(vocab_size: int = 300) -> Tokenizer:
    """A byte-level BPE trained by ``tokenizers`` itself, without our special tokens (they get appended)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator(TEXTS, trainer=trainer)
    return tok


def _tokenizer_file(kind: str, tmp_path: Path) -> Path:
    """A tokenizer.json, a vocab.json + merges.txt folder, or a 260-token ``.tiktoken`` written by hand."""
    if kind == "tokenizer.json":
        path = tmp_path / "tok" / "tokenizer.json"
        path.parent.mkdir()
        _hf_tokenizer().save(str(path))
        return path
    if kind == "vocab+merges":
        folder = tmp_path / "vm"
        folder.mkdir()
        _hf_tokenizer().model.save(str(folder))
        return folder
    ranks = {bytes([b]): b for b in range(256)}
    for i, piece in enumerate([b"th", b"he", b"in", b"the"]):  # each one built from lower-ranked tokens
        ranks[piece] = 256 + i
    path = tmp_path / "mini.tiktoken"
    write_rank_file(ranks, path)
    return path


KINDS = ["tokenizer.json", "vocab+merges", "tiktoken"]


def _built_vocab(path: Path) -> int:
    size: int = get_registry().build("tokenizer", "bpe", path=str(path)).vocab_size
    return size


@pytest.mark.parametrize("kind", KINDS)
def test_light_reader_counts_what_the_built_tokenizer_holds(kind: str, tmp_path: Path) -> None:
    path = _tokenizer_file(kind, tmp_path)
    assert vocab_size_of(path, SPECIALS) == _built_vocab(path)
    assert vocab_size_of(path) == len(file_tokens(path) or ())
    if kind == "tiktoken":
        assert vocab_size_of(path, SPECIALS) == 264  # 260 ranks + our 4 specials
    none = get_registry().build("tokenizer", "bpe", path=str(path), bos_token="", pad_token="", mask_token="")
    assert vocab_size_of(path, ["<|eos|>"]) == none.vocab_size


def test_light_reader_keeps_specials_the_file_already_has(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    _hf_tokenizer().save(str(path))
    n = len(file_tokens(path) or ())
    assert vocab_size_of(path, ["<|endoftext|>"]) == n  # GPT-2's eos is already in the vocabulary
    tok = get_registry().build("tokenizer", "bpe", path=str(path), eos_token="<|endoftext|>", bos_token="",
                               pad_token="", mask_token="")
    assert tok.vocab_size == n


def test_light_reader_leaves_unreadable_files_to_the_build(tmp_path: Path) -> None:
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{not json")
    assert vocab_size_of(broken) is None and vocab_size_of(tmp_path / "missing.json") is None
    assert vocab_size_of(tmp_path) is None  # the folder's tokenizer.json is the broken one
    (tmp_path / "bad.tiktoken").write_text("not-base64!! x\n")
    assert vocab_size_of(tmp_path / "bad.tiktoken") is None
    with pytest.raises(ValueError, match=r"not a readable tokenizer\.json"):
        get_registry().build("tokenizer", "bpe", path=str(broken))


@pytest.mark.parametrize("kind", KINDS)
def test_check_wires_the_vocab_size_of_a_tokenizer_file(kind: str, tmp_path: Path) -> None:
    path = _tokenizer_file(kind, tmp_path)
    toml = _pipeline_toml(tmp_path, tokenizer=f'path = "{path.as_posix()}"')
    proc = _cli(tmp_path, "check", str(toml), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["slot"]: r for r in json.loads(proc.stdout)["slots"]}
    assert rows["objective"]["wired"]["vocab_size"] == [_built_vocab(path), "tokenizer"]
    assert rows["tokenizer"]["options"]["vocab_size"] == _built_vocab(path)


def _run(tmp_path: Path, toml: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    proc = _cli(tmp_path, "run", str(toml), "--out", str(tmp_path / "run"), *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _saved(tmp_path: Path) -> dict[str, Any]:
    import tomllib

    return tomllib.loads((tmp_path / "run" / "pipeline.toml").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_run_with_a_tokenizer_file(kind: str, tmp_path: Path) -> None:
    path = _tokenizer_file(kind, tmp_path)
    proc = _run(tmp_path, _pipeline_toml(tmp_path, tokenizer=f'path = "{path.as_posix()}"'))
    assert _saved(tmp_path)["tokenizer"]["vocab_size"] == _built_vocab(path)
    # the count of validation tokens is a whole number: every target of the val split, once
    assert re.search(r"^validation: loss=\d+\.\d{4}, tokens=\d+$", proc.stdout, re.MULTILINE), proc.stdout


@pytest.mark.slow
def test_run_on_a_corpus_too_small_for_the_vocabulary(tmp_path: Path) -> None:
    """512 asked for, fewer learned: the objective is wired with what the tokenizer learned."""
    toml = _pipeline_toml(tmp_path, chars=120)
    assert _cli(tmp_path, "check", str(toml)).returncode == 0
    _run(tmp_path, toml)
    learned = _saved(tmp_path)["tokenizer"]["vocab_size"]
    assert 260 <= learned < 512


def test_an_objective_vocab_size_the_trained_tokenizer_lacks_is_a_config_error(tmp_path: Path) -> None:
    config = {
        "data": {"use": "text-shards", "paths": [str(tmp_path / "corpus" / "*.txt")], "out": str(tmp_path / "shards"),
                 "seq_len": 16, "val_fraction": 0.2, "dedup": "exact", "quality_filter": False},
        "tokenizer": {"use": "bpe", "vocab_size": 512},
        "backbone": {"use": "gpt", "embed_dim": 32, "depth": 1, "heads": 2, "max_positions": 32},
        "objective": {"use": "next-token", "vocab_size": 512},
    }
    _pipeline_toml(tmp_path, chars=120)  # writes the corpus
    pipeline = compose(config)
    with pytest.raises(ConfigError, match=r"\[objective.vocab_size\] objective `next-token` sets vocab_size=512 but "
                                          r"tokenizer `bpe` provides vocab_size=\d+ once built"):
        pipeline.build()


# -- val_fraction = 0: no val split -----------------------------------------------------------------------


@pytest.mark.slow
def test_run_without_a_val_split_trains_and_skips_validation_with_a_note(tmp_path: Path) -> None:
    toml = _pipeline_toml(tmp_path, val_fraction=0.0)
    toml.write_text(toml.read_text().replace("eval_every = 0", "eval_every = 1") + '\n[[evaluators]]\nuse = "perplexity"\n')
    proc = _run(tmp_path, toml)
    assert "note: data `text-shards` has no 'val' split: validation and the evaluators (perplexity) skipped" in proc.stderr
    assert "validation:" not in proc.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["step"] == 2 and summary["val"] is None and summary["evaluators"] == {}
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2] and not any(k.startswith("val_") for r in records for k in r)


def test_asking_for_the_missing_val_split_says_val_fraction_is_0(tmp_path: Path) -> None:
    toml = _pipeline_toml(tmp_path, val_fraction=0.0)
    from registry_core import Pipeline

    pipeline = Pipeline.from_toml(toml)
    assert not pipeline.has_split("val") and pipeline.has_split("train")
    with pytest.raises(ValueError, match=r"has no 'val' split: val_fraction is 0; set val_fraction > 0"):
        pipeline.data.dataset("val")
    assert len(pipeline.data.dataset("train")) > 0
    assert pipeline.trainer(tmp_path / "run").val_data is None


# -- a shard that fails its checksum is rebuilt -----------------------------------------------------------


@pytest.mark.slow
def test_run_rebuilds_a_shard_that_fails_its_checksum(tmp_path: Path) -> None:
    toml = _pipeline_toml(tmp_path, chars=600)
    _run(tmp_path, toml)
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    victim = tmp_path / "shards" / manifest["shards"][0]["bin"]
    data = bytearray(victim.read_bytes())
    data[4] ^= 0xFF  # same size: only the checksum tells
    victim.write_bytes(bytes(data))
    proc = _cli(tmp_path, "run", str(toml), "--out", str(tmp_path / "again"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rebuilt = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert rebuilt["build"] != manifest["build"] and rebuilt["shards"][0]["sha256"] == manifest["shards"][0]["sha256"]
    assert not victim.exists()  # the damaged build is gone


# -- the trainer's validation loss is the loss over the split ---------------------------------------------


@pytest.mark.parametrize(("objective", "backbone"), [("next-token", "gpt"), ("masked-lm", "bert")])
def test_trainer_val_loss_is_a_direct_pass_over_the_split(objective: str, backbone: str, tmp_path: Path) -> None:
    """Cross-entropy summed over every counted target of the val split, divided by their number (masked-lm
    draws its eval masks from ``eval_seed``, so the same batches get the same masks here)."""
    import torch
    from torch.nn import functional as F
    from torch.utils.data import default_collate

    from registry_core import Pipeline

    toml = _pipeline_toml(tmp_path, objective=objective, backbone=backbone, chars=600)
    pipeline = Pipeline.from_toml(toml, overrides=["train.batch_size=3"])  # a last, smaller batch
    trainer = pipeline.trainer(tmp_path / "run")
    got = trainer.evaluate()
    val, parts, obj = trainer.val_data, pipeline.parts, pipeline.objective
    assert len(val) > 3  # several batches
    pipeline.model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(val), 3):
            batch = default_collate([val[i] for i in range(start, min(start + 3, len(val)))])
            if objective == "next-token":
                ids, targets = obj.targets_of(batch)
                logits = obj.logits(parts, ids)
            else:
                corrupted, targets = obj.corrupt(batch["input_ids"])
                logits = obj.head(parts, parts.backbone(parts.embed(corrupted), parts.positional, None))
            total += float(F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100,
                                           reduction="sum"))
            count += int((targets != -100).sum())
    assert got["tokens"] == count and isinstance(got["tokens"], int)
    assert got["loss"] == pytest.approx(total / count, rel=1e-5)
    assert trainer.evaluate()["loss"] == got["loss"]  # the same pass every time
