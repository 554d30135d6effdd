"""The `bpe` tokenizer: training, the three file formats, tiktoken parity, batch encoding, embedding."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from pydoc_data.topics import topics

import pytest
import tiktoken

from registry_core import ConfigError, get_registry
from registry_llm.tokenizers.bpe import BPETokenizer
from registry_llm.tokenizers.rank_files import byte_to_unicode, read_rank_file, write_rank_file
from registry_llm.tokenizers.specs import GPT2_PATTERN

TEXTS = [topics[k] for k in sorted(topics)]
SAMPLE = "Ünïcödé — 日本語, emoji 🎉, tabs\t\tand  spaces\n\n  it's they'll 12345 x=y**2 <|eos|> done."


@pytest.fixture(scope="module")
def trained() -> BPETokenizer:
    tok = get_registry().build("tokenizer", "bpe", vocab_size=1000)
    return tok.train(TEXTS)


def test_build_through_registry_and_train(trained: BPETokenizer) -> None:
    assert trained.tokens == "discrete"
    assert trained.vocab_size == 1000
    assert trained.padded_vocab_size == 1024
    assert (trained.bos_id, trained.eos_id, trained.pad_id, trained.mask_id) == (0, 1, 2, 3)
    assert trained.resolved_config().padded_vocab_size == 1024
    ids = trained.encode(SAMPLE)
    assert trained.decode(ids) == SAMPLE
    assert trained.bos_id not in ids and trained.eos_id not in ids  # a literal "<|eos|>" stays text
    assert trained.encode("hi", bos=True, eos=True) == [0, *trained.encode("hi"), 1]


def test_encode_batch_equals_encode(trained: BPETokenizer, tmp_path: Path) -> None:
    texts = [SAMPLE, "", *[t[:2000] for t in TEXTS[:40]]]
    want = [trained.encode(t) for t in texts]
    assert trained.encode_batch(texts) == want
    path = trained.save(tmp_path)
    threaded = get_registry().build("tokenizer", "bpe", path=str(path), threads=2)
    assert threaded.encode_batch(texts) == want
    assert threaded.encode_batch(texts, eos=True) == [[*w, 1] for w in want]


def test_save_load_tokenizer_json_keeps_sha(trained: BPETokenizer, tmp_path: Path) -> None:
    path = trained.save(tmp_path / "tok")
    assert path == tmp_path / "tok" / "tokenizer.json"
    assert trained.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = get_registry().build("tokenizer", "bpe", path=str(path))
    assert loaded.sha256 == trained.sha256
    assert loaded.encode_batch(TEXTS[:5]) == trained.encode_batch(TEXTS[:5])
    folder = get_registry().build("tokenizer", "bpe", path=str(tmp_path / "tok"))
    assert folder.sha256 == trained.sha256


def test_load_vocab_and_merges_folder(trained: BPETokenizer, tmp_path: Path) -> None:
    trained.hf.model.save(str(tmp_path))  # writes vocab.json + merges.txt (GPT-2's layout)
    assert (tmp_path / "vocab.json").is_file() and (tmp_path / "merges.txt").is_file()
    loaded = get_registry().build("tokenizer", "bpe", path=str(tmp_path))
    assert loaded.vocab_size == trained.vocab_size
    assert loaded.eos_id == trained.eos_id  # specials already in vocab.json keep their ids
    for text in [SAMPLE, *TEXTS[:10]]:
        assert loaded.encode(text) == trained.encode(text)


def _rank_file_from(trained: BPETokenizer, path: Path) -> dict[bytes, int]:
    """tiktoken-style ranks of the trained vocabulary (specials left out, ranks made contiguous)."""
    to_byte = {c: b for b, c in byte_to_unicode().items()}
    vocab = trained.hf.get_vocab()
    pieces = sorted((i, s) for s, i in vocab.items() if not s.startswith("<|"))
    ranks = {bytes(to_byte[c] for c in s): rank for rank, (_, s) in enumerate(pieces)}
    write_rank_file(ranks, path)
    return ranks


def test_tiktoken_rank_file_gives_tiktoken_ids(trained: BPETokenizer, tmp_path: Path) -> None:
    ranks = _rank_file_from(trained, tmp_path / "mini.tiktoken")
    assert read_rank_file(tmp_path / "mini.tiktoken") == ranks
    reference = tiktoken.Encoding("mini", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={})
    ours = get_registry().build("tokenizer", "bpe", path=str(tmp_path / "mini.tiktoken"))
    assert ours.vocab_size == len(ranks) + 4  # our four specials come after the ranks
    assert ours.eos_id == len(ranks) + 1
    for text in [SAMPLE, *TEXTS]:
        assert ours.encode(text) == reference.encode_ordinary(text)
    assert ours.decode(reference.encode_ordinary(SAMPLE)) == SAMPLE


def test_bad_paths_and_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        get_registry().build("tokenizer", "bpe", path=str(tmp_path / "missing.json"))
    with pytest.raises(FileNotFoundError, match=r"without tokenizer\.json"):
        get_registry().build("tokenizer", "bpe", path=str(tmp_path))
    bad = tmp_path / "bad.tiktoken"
    bad.write_text("not-base64!! x\n")
    with pytest.raises(ValueError, match=r"bad.tiktoken:1"):
        get_registry().build("tokenizer", "bpe", path=str(bad))
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match=r"not a readable tokenizer\.json"):
        get_registry().build("tokenizer", "bpe", path=str(broken))
    with pytest.raises(ConfigError, match="vocab_siz"):
        get_registry().build("tokenizer", "bpe", vocab_siz=10)


def test_untrained_tokenizer_says_what_to_do() -> None:
    tok = get_registry().build("tokenizer", "bpe")
    assert not tok.trained and tok.vocab_size == 4096
    with pytest.raises(RuntimeError, match="train"):
        tok.encode("hello")


def test_padded_vocab_size_and_embedding(trained: BPETokenizer, tmp_path: Path) -> None:
    import torch

    emb = trained.embedding(32)
    assert isinstance(emb, torch.nn.Embedding)
    assert tuple(emb.weight.shape) == (1024, 32)
    assert abs(float(emb.weight.detach().std()) - 0.02) < 0.002
    path = trained.save(tmp_path)
    wide = get_registry().build("tokenizer", "bpe", path=str(path), pad_multiple=128)
    assert wide.padded_vocab_size == 1024
    assert get_registry().build("tokenizer", "bpe", path=str(path), padded_vocab_size=1100).padded_vocab_size == 1100
    with pytest.raises(ValueError, match="padded_vocab_size"):
        get_registry().build("tokenizer", "bpe", path=str(path), padded_vocab_size=999)


def test_token_bytes_add_up_to_the_text(trained: BPETokenizer) -> None:
    ids = trained.encode(SAMPLE, bos=True, eos=True)
    assert trained.token_bytes(trained.bos_id) == b""
    assert b"".join(trained.token_bytes(i) for i in ids) == SAMPLE.encode("utf-8")


def test_pickles_for_worker_processes(trained: BPETokenizer) -> None:
    clone = pickle.loads(pickle.dumps(trained))
    assert clone.sha256 == trained.sha256
    assert clone.encode(SAMPLE) == trained.encode(SAMPLE)


def test_no_special_tokens_option(tmp_path: Path) -> None:
    tok = get_registry().build("tokenizer", "bpe", vocab_size=300, mask_token="", bos_token="").train(TEXTS[:5])
    assert tok.mask_id is None and tok.bos_id is None and tok.eos_id == 0
    with pytest.raises(ValueError, match="no bos_token"):
        tok.encode("x", bos=True)
