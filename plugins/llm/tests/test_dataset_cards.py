"""Named text corpora: the ``tinystories`` ... cards pull a dataset repo's parquet shards from a hub on loopback
(the real huggingface_hub client), within a byte budget, into text shards a run trains on and locks.

The repo holds Python's own documentation (``pydoc_data.topics``) as parquet shards named the way the hub names them
(``data/train-00000-of-00002-<hash>.parquet``, a ``text`` column), in the layout of roneneldan/TinyStories.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from pydoc_data.topics import topics

import pytest

from registry_core import Card, ConfigError, compose, get_registry
from registry_core.hub import HubError
from registry_core.testing import LoopbackHub

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

REPO = "roneneldan/TinyStories"
ROOT = Path(__file__).resolve().parents[3]


def parquet(texts: list[str], column: str = "text") -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({column: texts}), buffer)
    return buffer.getvalue()


def shards(column: str = "text") -> dict[str, bytes]:
    """Two train shards and a validation shard of pydoc paragraphs (one document each, as a story is one row), named
    with a content hash as the hub names them."""
    docs = [p for k in sorted(topics) for p in topics[k].split("\n\n") if len(p) > 200]
    parts = {"train-00000-of-00002": docs[:300], "train-00001-of-00002": docs[300:600],
             "validation-00000-of-00001": docs[600:700]}
    out = {}
    for stem, texts in parts.items():
        data = parquet(texts, column)
        out[f"data/{stem}-{hashlib.sha256(data).hexdigest()[:16]}.parquet"] = data
    out["README.md"] = b"# TinyStories stand-in: pydoc topics\n"
    return out


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True, cwd=cwd,
                          check=False, timeout=600)


def test_the_cards_are_listed_and_shown_without_network() -> None:
    reg = get_registry()
    cards = {s.name: s.card for s in reg.list(kind="data_source") if isinstance(s.card, Card)}  # hub corpora
    assert {n: c.repo for n, c in cards.items()} == {"tinystories": REPO, "fineweb-edu-10bt": "HuggingFaceFW/fineweb-edu",
                                                     "wikitext-103": "Salesforce/wikitext"}
    assert all(c.repo_type == "dataset" and c.options["max_bytes"] for c in cards.values())


def test_pull_takes_the_shards_the_budget_covers(hub: LoopbackHub, tmp_path: Path) -> None:
    files = shards()
    commit = hub.add_repo(REPO, files, repo_type="dataset")
    out = cli("pull", "tinystories", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    [record] = json.loads(out.stdout)
    train = sorted(n for n in files if "/train-" in n)
    assert record["commit"] == commit and [f["name"] for f in record["files"]] == train
    # a budget smaller than the first shard still takes one shard, and no more
    source = get_registry().build("data_source", "text-shards", hub=REPO, files=["data/train-*.parquet"],
                                  max_bytes=1, text_field="text")
    assert [p.name for p in source._hub_files()] == [Path(train[0]).name]


def test_a_run_on_the_card_trains_on_the_pulled_shards_and_locks_the_commit(hub: LoopbackHub, tmp_path: Path) -> None:
    commit = hub.add_repo(REPO, shards(), repo_type="dataset")
    pipe = compose({
        "data": {"use": "tinystories", "seq_len": 32, "val_fraction": 0.1, "quality_filter": False,
                 "max_documents": 100},
        "tokenizer": {"use": "bpe", "vocab_size": 300},
        "positional": {"use": "rope"},
        "backbone": {"use": "gpt", "embed_dim": 32, "depth": 2, "heads": 4, "max_positions": 64},
        "objective": {"use": "next-token"},
        "train": {"steps": 20, "batch_size": 8, "lr": 3e-3, "warmup_steps": 2, "log_every": 10, "device": "cpu"},
    })
    result = pipe.run(tmp_path / "run")
    assert result.step == 20 and result.loss is not None
    lock = json.loads((tmp_path / "run" / "pipeline.lock.json").read_text())
    pinned = lock["hub"]["data"]
    assert (pinned["repo"], pinned["commit"]) == (REPO, commit) and len(pinned["files"]) == 2
    manifest = json.loads((tmp_path / "run" / "text-shards" / "manifest.json").read_text())
    assert manifest["stats"]["documents_read"] == 100  # the max_documents budget


def test_bad_inputs_are_named(hub: LoopbackHub) -> None:
    hub.add_repo(REPO, shards(column="story"), repo_type="dataset")
    source = get_registry().build("data_source", "tinystories")
    with pytest.raises(Exception, match=r"no column 'text'; columns are story"):
        list(source.train_tokenizer_texts())
    with pytest.raises(ConfigError, match=r"max_documents.*must be >= 1, got 0"):
        get_registry().build("data_source", "tinystories", max_documents=0)
    with pytest.raises(HubError, match=r"dataset repo roneneldan/TinyStories at 'main' has no file matching "
                                       r"'data/test-\*.parquet'"):
        get_registry().build("data_source", "text-shards", hub=REPO, files=["data/test-*.parquet"])._hub_files()
    with pytest.raises(ConfigError, match=r"paths.*or 'hub'"):
        get_registry().build("data_source", "text-shards", hub=REPO, files=["x"], paths=["y"])


def _card_run(folder: Path, extra: str = "") -> Path:
    path = folder / "p.toml"
    path.write_text(f'[data]\nuse = "tinystories"\nseq_len = 32\nquality_filter = false\n{extra}\n'
                    '[tokenizer]\nuse = "bpe"\nvocab_size = 300\n[positional]\nuse = "rope"\n'
                    '[backbone]\nuse = "gpt"\nembed_dim = 32\ndepth = 1\nheads = 2\nmax_positions = 64\n'
                    '[objective]\nuse = "next-token"\n[train]\nsteps = 2\nbatch_size = 4\n')
    return path


@pytest.mark.parametrize(("column", "extra", "message"), [
    ("story", "", "no column 'text'; columns are story"),
    ("text", "max_documents = 0", "[data.max_documents] must be >= 1, got 0"),
    ("text", "max_bytes = 0", "[data.max_bytes] must be >= 1, got 0"),
], ids=["no-text-column", "no-documents", "no-bytes"])
def test_bad_card_runs_are_one_line_and_leave_no_run(hub: LoopbackHub, tmp_path: Path, column: str, extra: str,
                                                     message: str) -> None:
    from registry_core.testing import one_error_line

    hub.add_repo(REPO, shards(column=column), repo_type="dataset")
    out = cli("run", str(_card_run(tmp_path, extra)), "--out", "run", cwd=tmp_path)
    line = one_error_line(out)
    assert message in line, line
    assert not (tmp_path / "run").exists() and not (tmp_path / "text-shards").exists()


def test_an_unknown_card_is_one_line(tmp_path: Path) -> None:
    from registry_core.testing import one_error_line

    line = one_error_line(cli("pull", "tinystory", cwd=tmp_path))
    assert line.startswith("error: no card named 'tinystory'; did you mean 'tinystories'?"), line
