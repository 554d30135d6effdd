"""A run folder from elsewhere is untrusted input: ``generate``, ``export`` and ``report`` read only the files
inside it. A file that is a link out of the folder, a tokenizer path or lock entry that leaves it, is refused
with one ``error:`` line naming the folder and the file, and the file it points to is never read or copied."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from registry_core.pipeline._toml import dumps
from registry_core.testing import one_error_line, run_cli

SECRET = "a decoy secret that must never be read"


def tiny(folder: Path) -> Path:
    """A GPT pipeline small enough to train in seconds on ``folder/corpus/*.txt``."""
    corpus = folder / "corpus"
    corpus.mkdir()
    for doc in range(6):
        (corpus / f"{doc}.txt").write_text("".join(f"line {i}: the quick brown fox {i * doc}.\n" for i in range(30)))
    config = {
        "data": {"use": "text-shards", "paths": [str(corpus / "*.txt")], "out": str(folder / "shards"),
                 "seq_len": 16, "val_fraction": 0.2, "quality_filter": False, "dedup": "none"},
        "tokenizer": {"use": "bpe", "vocab_size": 280},
        "positional": {"use": "learned"},
        "backbone": {"use": "gpt", "embed_dim": 16, "depth": 1, "heads": 2, "max_positions": 32},
        "objective": {"use": "next-token"},
        "train": {"steps": 2, "batch_size": 2, "warmup_steps": 1, "log_every": 1, "checkpoint_every": 2},
    }
    path = folder / "tiny.toml"
    path.write_text(dumps(config))
    return path


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("untrusted")
    out = run_cli("run", str(tiny(root)), "--out", "run", cwd=root)
    assert out.returncode == 0, out.stderr
    return root / "run"


@pytest.fixture
def copy(text_run: Path, tmp_path: Path) -> Path:
    """A copy of the run beside a decoy secret (``tmp_path/secret.txt``)."""
    (tmp_path / "secret.txt").write_text(SECRET)
    return Path(shutil.copytree(text_run, tmp_path / "run"))


def link_out(run: Path, name: str) -> Path:
    """Replace the run's file ``name`` by a link to the decoy secret beside the run."""
    (run / name).unlink()
    (run / name).symlink_to(run.parent / "secret.txt")
    return run / name


COMMANDS = {
    "generate": ["generate", "run", "--prompt", "line", "--max-tokens", "2"],
    "export": ["export", "run", "--to", "hf-gpt2", "exported"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("name", ["model.safetensors", "pipeline.toml", "pipeline.lock.json"])
def test_a_file_linked_out_of_the_run_is_refused(copy: Path, tmp_path: Path, command: str, name: str) -> None:
    link_out(copy, name)
    line = one_error_line(run_cli(*COMMANDS[command], cwd=tmp_path))
    assert line.endswith(f"/run: {name} is a link to {tmp_path.resolve() / 'secret.txt'}, outside the folder; a run "
                         "folder is read only from the files inside it"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "secret.txt"]  # no export written


@pytest.mark.parametrize("path", ["../secret.txt", "/etc/hostname"])
def test_a_tokenizer_path_out_of_the_run_is_refused(copy: Path, tmp_path: Path, path: str) -> None:
    config = copy / "pipeline.toml"
    text = config.read_text()
    assert 'path = "tokenizer/tokenizer.json"' in text
    config.write_text(text.replace('path = "tokenizer/tokenizer.json"', f'path = "{path}"'))
    line = one_error_line(run_cli(*COMMANDS["generate"], cwd=tmp_path))
    assert line.endswith(f"/run: the path {path!r} lies outside the folder; a run folder is read only from the "
                         "files inside it"), line


def test_a_lock_entry_out_of_the_run_is_refused(copy: Path, tmp_path: Path) -> None:
    lock = copy / "pipeline.lock.json"
    text = lock.read_text()
    assert '"path": "tokenizer/tokenizer.json"' in text
    lock.write_text(text.replace('"path": "tokenizer/tokenizer.json"', '"path": "../secret.txt"'))
    line = one_error_line(run_cli(*COMMANDS["generate"], cwd=tmp_path))
    assert line.endswith("/run: the path '../secret.txt' lies outside the folder; a run folder is read only from "
                         "the files inside it"), line


@pytest.mark.parametrize("name", ["metrics.jsonl", "summary.json", "pipeline.toml"])
def test_report_reads_only_the_runs_own_files(copy: Path, tmp_path: Path, name: str) -> None:
    link_out(copy, name)
    line = one_error_line(run_cli("report", "run", "--out", "report", cwd=tmp_path))
    assert line == (f"error: run folder run: {name} is a link to {tmp_path.resolve() / 'secret.txt'}, outside the "
                    "folder; a run folder is read only from the files inside it")
    assert not (tmp_path / "report").exists()


def test_a_run_reached_through_a_link_is_still_read(text_run: Path, tmp_path: Path) -> None:
    """Only what lies outside the (resolved) run folder is refused: a link to the run itself is fine."""
    (tmp_path / "latest").symlink_to(text_run)
    out = run_cli("generate", "latest", "--prompt", "line", "--max-tokens", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
