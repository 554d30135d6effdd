"""Bad tokenizer files and corpora through the real CLI: one ``error:`` line naming the file, exit 1, no traceback,
nothing written into ``--out``; and ``run`` / ``generate`` with ``--json`` print only their summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry_core.pipeline._toml import dumps
from registry_core.testing import one_error_line, run_cli

cli = run_cli
one_error = one_error_line


def tiny(folder: Path, **tokenizer: object) -> Path:
    """A GPT pipeline small enough to train in seconds on ``folder/corpus/*.txt``."""
    corpus = folder / "corpus"
    corpus.mkdir(exist_ok=True)
    config = {
        "data": {"use": "text-shards", "paths": [str(corpus / "*.txt")], "out": str(folder / "shards"),
                 "seq_len": 16, "val_fraction": 0.2, "quality_filter": False, "dedup": "none"},
        "tokenizer": {"use": "bpe", "vocab_size": 300, **tokenizer},
        "positional": {"use": "learned"},
        "backbone": {"use": "gpt", "embed_dim": 16, "depth": 1, "heads": 2, "max_positions": 32},
        "objective": {"use": "next-token"},
        "train": {"steps": 2, "batch_size": 2, "warmup_steps": 1, "log_every": 1, "checkpoint_every": 2},
    }
    path = folder / "tiny.toml"
    path.write_text(dumps(config))
    return path


def write_corpus(folder: Path) -> None:
    (folder / "corpus").mkdir(exist_ok=True)
    for doc in range(10):  # one document per file; the val split takes whole documents
        text = "".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * doc}.\n" for i in range(40))
        (folder / "corpus" / f"{doc}.txt").write_text(text)


def vocab_merges(folder: Path, merges: str) -> Path:
    tok = folder / "tok"
    tok.mkdir()
    (tok / "vocab.json").write_text(json.dumps({"a": 0, "b": 1, "ab": 2}))
    (tok / "merges.txt").write_text(merges)
    return tok


BAD_MERGES = [
    ("#version: 0.2\na b\nab", "merges.txt cannot be read (Error while reading BPE files: Merges text file invalid at "
                               "line 2)"),
    ("#version: 0.2\na b\nx y\n", "merges.txt cannot be read (Error while initializing BPE: Token `x` out of "
                                  "vocabulary)"),
]


@pytest.mark.parametrize(("merges", "problem"), BAD_MERGES, ids=["truncated", "unknown-token"])
def test_a_bad_merges_file_is_named(tmp_path: Path, merges: str, problem: str) -> None:
    write_corpus(tmp_path)
    tok = vocab_merges(tmp_path, merges)
    line = one_error(cli("run", str(tiny(tmp_path, path=str(tok))), "--out", "out", cwd=tmp_path))
    assert line == f"error: bpe path {tok}: {problem}; expected vocab.json mapping tokens to ids and merges.txt " \
        "holding one 'left right' pair of vocabulary tokens per line"
    assert not (tmp_path / "out").exists()


def test_an_empty_corpus_is_named(tmp_path: Path) -> None:
    path = tiny(tmp_path)
    (tmp_path / "corpus" / "empty.txt").write_text("")
    assert one_error(cli("run", str(path), "--out", "out", cwd=tmp_path)) == \
        f"error: text-shards: no document left to write into {tmp_path / 'shards'} (counts: {{'documents_read': 1, " \
        "'bytes_read': 0, 'rejected.empty': 1}); check paths, text_field and the filter settings"
    assert not (tmp_path / "out").exists()
    (tmp_path / "corpus" / "one.txt").write_text("a single short document\n")
    (tmp_path / "corpus" / "two.txt").write_text("and another\n")
    line = one_error(cli("run", str(path), "--out", "out", cwd=tmp_path))
    assert line.startswith(f"error: the 'val' split of {tmp_path / 'shards'} has ") and "too few for one window" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_run_and_generate_json_print_only_their_summary(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    run = cli("run", str(tiny(tmp_path)), "--out", "out", "--json", "--sample", "line", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["step"] == 2 and summary["out"] == "out" and summary["sample"].startswith("line")
    out = cli("generate", "out", "--prompt", "line", "--max-tokens", "4", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["prompt"] == "line" and record["text"].startswith("line") and record["dir"] == "out"


def test_a_user_folder_as_shard_out_keeps_its_build_named_folders(tmp_path: Path) -> None:
    """text-shards sweeps stale builds of its own only: a user's ``build-*`` folder in ``data.out`` is never removed."""
    write_corpus(tmp_path)
    (tmp_path / "shards" / "build-notes").mkdir(parents=True)
    (tmp_path / "shards" / "build-notes" / "todo.txt").write_text("mine")
    (tmp_path / "shards" / "build-1234-abcd").mkdir()  # named exactly like a build, but not marked as ours
    (tmp_path / "shards" / "build-1234-abcd" / "keep.txt").write_text("mine too")
    done = cli("run", str(tiny(tmp_path)), "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "shards" / "build-notes" / "todo.txt").read_text() == "mine"
    assert (tmp_path / "shards" / "build-1234-abcd" / "keep.txt").read_text() == "mine too"
