"""text-shards end to end: build, round trip, idempotence, splits, bad input and corrupt shards."""

from __future__ import annotations

import json
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

import numpy as np
import pytest

from registry_core import ConfigError, get_registry
from registry_llm.data.shard_files import ShardError
from registry_llm.data.text_cleaning import clean_text
from registry_llm.data.text_files import InputError
from registry_llm.data.text_shards import EmptyCorpusError, TextShards, TokenizerMismatchError
from registry_llm.tokenizers.bpe import BPETokenizer

PROSE = [clean_text(topics[k]) for k in ("exceptions", "for", "class", "import", "lambda", "while", "try", "with")]


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    return get_registry().build("tokenizer", "bpe", vocab_size=800).train(topics[k] for k in sorted(topics))


def shards(tmp_path: Path, **options: Any) -> TextShards:
    options.setdefault("out", str(tmp_path / "shards"))
    return get_registry().build("data_source", "text-shards", **options)


def write_jsonl(path: Path, docs: list[str], field: str = "text") -> Path:
    path.write_text("".join(json.dumps({field: d}) + "\n" for d in docs), encoding="utf-8")
    return path


def read_all_tokens(src: TextShards) -> np.ndarray:
    man = src.manifest()
    return np.concatenate([np.fromfile(src.out / s["bin"], dtype=man["dtype"]) for s in man["shards"]])


def test_round_trip_jsonl(tmp_path: Path, tok: BPETokenizer) -> None:
    write_jsonl(tmp_path / "a.jsonl", PROSE[:4], field="body")
    write_jsonl(tmp_path / "b.jsonl", PROSE[4:], field="body")
    src = shards(tmp_path, paths=[str(tmp_path / "*.jsonl")], text_field="body", dedup="exact", seq_len=32,
                 shard_tokens=1500)
    src.attach_tokenizer(tok).prepare()
    man = src.manifest()
    assert man["dtype"] == "uint16" and len(man["shards"]) > 1
    assert man["tokenizer"]["sha256"] == tok.sha256 and man["tokenizer"]["vocab_size"] == 800
    assert man["n_documents"] == len(PROSE) == src.stats["documents_kept"]
    assert man["cleaning"]["dedup"] == "exact" and len(man["inputs"]) == 2
    # documents come back exactly, each followed by eos, in input order
    stream = read_all_tokens(src).tolist()
    docs, cur = [], []
    for t in stream:
        if t == tok.eos_id:
            docs.append(tok.decode(cur))
            cur = []
        else:
            cur.append(t)
    assert docs == PROSE
    # windows: item i is tokens [i*T, i*T + T + 1) of its split, crossing shard boundaries
    train, val = src.dataset("train"), src.dataset("val")
    assert len(train) == (train.n_tokens - 1) // 32 and len(val) >= 1
    assert train.n_tokens + val.n_tokens == man["n_tokens"]
    for i in (0, 7, len(train) - 1):
        item = train[i]
        assert item["input_ids"].dtype.is_floating_point is False and tuple(item["input_ids"].shape) == (32,)
        assert item["input_ids"].tolist() == stream[i * 32 : i * 32 + 32]
        assert item["targets"].tolist() == stream[i * 32 + 1 : i * 32 + 33]
    first_val = val[0]["input_ids"].tolist()
    assert first_val == stream[train.n_tokens : train.n_tokens + 32]
    assert stream[train.n_tokens - 1] == tok.eos_id  # val starts on a document boundary
    with pytest.raises(IndexError):
        train[len(train)]
    with pytest.raises(ValueError, match="splits"):
        src.dataset("test")


def test_embedded_corpus_default_and_idempotent_prepare(tmp_path: Path, tok: BPETokenizer) -> None:
    src = shards(tmp_path, rejects=str(tmp_path / "rejects.jsonl"))
    src.attach_tokenizer(tok).prepare()
    stats = src.stats
    assert stats["documents_read"] == len(topics)
    rejected = {k: v for k, v in stats.items() if k.startswith("rejected.")}
    assert sum(rejected.values()) + stats["documents_kept"] == len(topics)
    lines = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert len(lines) == sum(rejected.values())
    assert all(r["origin"].startswith("pydoc_data/topics.py:") and f"rejected.{r['reason']}" in stats for r in lines)
    build = src.manifest()["build"]
    # a second prepare is a no-op; a changed option rebuilds and removes the old build
    again = shards(tmp_path, rejects=str(tmp_path / "rejects.jsonl")).attach_tokenizer(tok)
    again.prepare()
    assert again.stats.get("up_to_date") and again.manifest()["build"] == build
    (tmp_path / "shards" / "build-notes").mkdir()  # a user's folder named like a build: never swept
    (tmp_path / "shards" / "build-notes" / "todo.txt").write_text("mine")
    changed = shards(tmp_path, dedup="none", quality_filter=False).attach_tokenizer(tok)
    changed.prepare()
    man = changed.manifest()
    assert man["build"] != build and man["n_documents"] == len(topics)
    assert not (tmp_path / "shards" / build).exists()
    assert (tmp_path / "shards" / "build-notes" / "todo.txt").read_text() == "mine"


def test_switching_a_rule_off_keeps_its_documents(tmp_path: Path, tok: BPETokenizer) -> None:
    short = "A tiny note with too few words to be kept."
    write_jsonl(tmp_path / "d.jsonl", [PROSE[0], short])
    src = shards(tmp_path, paths=[str(tmp_path / "d.jsonl")], seq_len=8).attach_tokenizer(tok)
    src.prepare()
    assert src.stats["rejected.too_few_words"] == 1 and src.stats["documents_kept"] == 1
    off = shards(tmp_path, paths=[str(tmp_path / "d.jsonl")], seq_len=8, min_words=None).attach_tokenizer(tok)
    off.prepare()
    assert off.stats["documents_kept"] == 2
    # TOML has no None: the same switch by rule name
    named = shards(tmp_path, paths=[str(tmp_path / "d.jsonl")], seq_len=8, disable_rules=["too_few_words"])
    named.attach_tokenizer(tok).prepare()
    assert named.stats["documents_kept"] == 2
    with pytest.raises(ConfigError, match=r"unknown rule\(s\) 'too_short'; known rules: too_few_words"):
        shards(tmp_path, disable_rules=["too_short"])


def test_invalid_utf8_is_counted_and_skipped_or_raised(tmp_path: Path, tok: BPETokenizer) -> None:
    good = json.dumps({"text": PROSE[0]}).encode()
    other = json.dumps({"text": PROSE[1]}).encode()
    bad_lines = b'{"text": "bad \xff\xfe bytes"}\n{not json}\n{"text": "lone \\ud800 surrogate"}\n'
    (tmp_path / "mixed.jsonl").write_bytes(good + b"\n" + bad_lines + other + b"\n")
    (tmp_path / "latin1.txt").write_bytes(PROSE[2].encode("utf-8") + "caf\xe9".encode("latin-1"))
    (tmp_path / "fine.txt").write_text(PROSE[3], encoding="utf-8")
    paths = [str(tmp_path / "*.jsonl"), str(tmp_path / "*.txt")]
    src = shards(tmp_path, paths=paths, dedup="none", seq_len=8, rejects=str(tmp_path / "rej.jsonl"))
    src.attach_tokenizer(tok).prepare()
    assert src.stats["rejected.invalid_utf8"] == 3  # two jsonl lines (bad bytes, lone surrogate), one .txt file
    assert src.stats["rejected.unreadable"] == 1  # the line that is not JSON
    assert src.stats["documents_kept"] == 3
    origins = {json.loads(x)["origin"] for x in (tmp_path / "rej.jsonl").read_text().splitlines()}
    assert f"{tmp_path / 'mixed.jsonl'}:2" in origins and str(tmp_path / "latin1.txt") in origins
    strict = shards(tmp_path, paths=paths, errors="raise", out=str(tmp_path / "strict"))
    with pytest.raises(InputError, match=r"latin1.txt: invalid UTF-8 at byte \d+"):
        strict.attach_tokenizer(tok).prepare()
    assert not (tmp_path / "strict" / "manifest.json").exists()
    assert list((tmp_path / "strict").glob("build-*")) == []


def test_txt_blank_line_blocks(tmp_path: Path, tok: BPETokenizer) -> None:
    (tmp_path / "book.txt").write_text("\n\n".join(PROSE[:3]).replace("\n\n", "\n \n", 1), encoding="utf-8")
    src = shards(tmp_path, paths=[str(tmp_path)], txt_documents="blank-lines", quality_filter=False, dedup="none",
                 seq_len=8)
    src.attach_tokenizer(tok).prepare()
    blocks = sum(len([b for b in p.split("\n\n") if b.strip()]) for p in PROSE[:3])
    assert src.manifest()["n_documents"] == blocks


def test_empty_corpus_errors(tmp_path: Path, tok: BPETokenizer) -> None:
    with pytest.raises(EmptyCorpusError, match="no input files match"):
        shards(tmp_path, paths=[str(tmp_path / "nothing-*.txt")]).attach_tokenizer(tok).prepare()
    (tmp_path / "tiny.txt").write_text("too short")
    (tmp_path / "blank.txt").write_text("   \n\n ")
    with pytest.raises(EmptyCorpusError, match=r"no document left.*rejected.too_few_words"):
        shards(tmp_path, paths=[str(tmp_path / "*.txt")]).attach_tokenizer(tok).prepare()
    with pytest.raises(RuntimeError, match="attach_tokenizer"):
        shards(tmp_path).prepare()
    with pytest.raises(FileNotFoundError, match="run prepare"):
        shards(tmp_path, out=str(tmp_path / "never")).dataset("train")


def test_corrupt_and_truncated_shards_are_named(tmp_path: Path, tok: BPETokenizer) -> None:
    write_jsonl(tmp_path / "d.jsonl", PROSE)
    src = shards(tmp_path, paths=[str(tmp_path / "d.jsonl")], seq_len=16, shard_tokens=2000).attach_tokenizer(tok)
    src.prepare()
    man = src.manifest()
    victim = src.out / man["shards"][1]["bin"]
    data = bytearray(victim.read_bytes())
    data[10] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=rf"{victim.name} does not match its sha256.*prepare\(\) rebuilds it"):
        src.dataset("train")
    # prepare checks the checksums too: a corrupt shard of the same size is rebuilt, not kept
    src.prepare()
    assert src.manifest()["build"] != man["build"] and not src.stats.get("up_to_date")
    assert len(src.dataset("train")) > 0
    man = src.manifest()
    victim = src.out / man["shards"][1]["bin"]
    victim.write_bytes(bytes(data[:-2]))
    with pytest.raises(ShardError, match=rf"{victim.name} is {len(data) - 2} bytes but the manifest records"):
        src.dataset("train")
    # prepare notices and rebuilds; the dataset opens again
    src.prepare()
    assert len(src.dataset("train")) > 0


def test_tokenizer_mismatch_fails_clearly(tmp_path: Path, tok: BPETokenizer) -> None:
    write_jsonl(tmp_path / "d.jsonl", PROSE)
    src = shards(tmp_path, paths=[str(tmp_path / "d.jsonl")], seq_len=16).attach_tokenizer(tok)
    src.prepare()
    other = get_registry().build("tokenizer", "bpe", vocab_size=500).train(PROSE)
    reopened = shards(tmp_path, paths=[str(tmp_path / "d.jsonl")], seq_len=16).attach_tokenizer(other)
    with pytest.raises(TokenizerMismatchError, match=r"built with tokenizer sha256 .*\(vocab 800\).*\(vocab 500\)"):
        reopened.dataset("train")


def test_failed_rebuild_keeps_the_previous_shards(tmp_path: Path, tok: BPETokenizer) -> None:
    write_jsonl(tmp_path / "d.jsonl", PROSE)
    src = shards(tmp_path, paths=[str(tmp_path / "d.jsonl")], seq_len=16).attach_tokenizer(tok)
    src.prepare()
    before = src.manifest()
    first = src.dataset("train")[0]["input_ids"].tolist()
    (tmp_path / "d.jsonl").write_bytes(b'{"text": "\xff"}\n')
    strict = shards(tmp_path, paths=[str(tmp_path / "d.jsonl")], seq_len=16, errors="raise").attach_tokenizer(tok)
    with pytest.raises(InputError):
        strict.prepare()
    assert src.manifest() == before
    assert src.dataset("train")[0]["input_ids"].tolist() == first


def test_token_loader_and_val_fraction_zero(tmp_path: Path, tok: BPETokenizer) -> None:
    write_jsonl(tmp_path / "d.jsonl", PROSE)
    src = shards(tmp_path, paths=[str(tmp_path / "d.jsonl")], seq_len=16, val_fraction=0.0).attach_tokenizer(tok)
    src.prepare()
    with pytest.raises(ValueError, match="'val' split"):
        src.dataset("val")
    loader = src.token_loader(batch_size=4, seed=3)
    x, y = loader.get_batch()
    assert tuple(x.shape) == (4, 16) and (x[:, 1:] == y[:, :-1]).all()
    again = src.token_loader(batch_size=4, seed=3).get_batch()
    assert (again[0] == x).all()


def test_dataset_is_picklable_for_loader_workers(tmp_path: Path, tok: BPETokenizer) -> None:
    import pickle

    write_jsonl(tmp_path / "d.jsonl", PROSE)
    src = shards(tmp_path, paths=[str(tmp_path / "d.jsonl")], seq_len=16).attach_tokenizer(tok)
    src.prepare()
    train = src.dataset("train")
    clone = pickle.loads(pickle.dumps(train))
    assert clone[5]["input_ids"].tolist() == train[5]["input_ids"].tolist()


@pytest.mark.slow
def test_worker_processes_give_identical_shards(tmp_path: Path, tok: BPETokenizer) -> None:
    docs = [clean_text(topics[k]) for k in sorted(topics)]
    write_jsonl(tmp_path / "d.jsonl", docs + docs[:5])
    common: dict[str, Any] = {"paths": [str(tmp_path / "d.jsonl")], "batch_documents": 7}
    one = shards(tmp_path, out=str(tmp_path / "one"), **common).attach_tokenizer(tok)
    two = shards(tmp_path, out=str(tmp_path / "two"), workers=2, **common).attach_tokenizer(tok)
    one.prepare()
    two.prepare()
    assert [s["sha256"] for s in one.manifest()["shards"]] == [s["sha256"] for s in two.manifest()["shards"]]
    assert one.stats["rejected.near_duplicate"] >= 5
    assert {k: v for k, v in one.stats.items() if k != "seconds"} == {
        k: v for k, v in two.stats.items() if k != "seconds"
    }
