"""Long documents are cleaned, signed and tokenized in bounded pieces, with the same results as in one piece."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from registry_core import get_registry
from registry_llm.data import dedup
from registry_llm.data.embedded_corpus import embedded_documents
from registry_llm.data.text_cleaning import dedup_key_text
from registry_llm.data.word_ngrams import ngram_hashes, stable_word_keys
from registry_llm.tokenizers.text_pieces import text_pieces

CORPUS = " ".join(text for _, text in embedded_documents())


def one_line(chars: int) -> str:
    """A single-line document of about ``chars`` characters of real prose and code (spaces kept, no newlines)."""
    flat = " ".join(CORPUS.split())
    return (flat * (chars // len(flat) + 1))[:chars]


def test_pieces_join_back_are_bounded_and_cut_only_before_a_lone_space() -> None:
    text = "ab  cd\tef gh  " + "word " * 300 + "x" * 5000 + " tail"
    pieces = list(text_pieces(text, 64))
    assert "".join(pieces) == text and all(len(p) <= 64 for p in pieces)
    for before, after in itertools.pairwise(pieces):
        if after[0] == " ":  # a safe cut: a single space between two non-spaces
            assert not before[-1].isspace() and not after[1].isspace()
        else:  # only inside the 5000 x's, where no safe cut exists
            assert before[-1] == after[0] == "x"
    assert list(text_pieces("short", 64)) == ["short"]
    with pytest.raises(ValueError, match="max_chars must be >= 2"):
        list(text_pieces(text, 1))


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    tok = get_registry().build("tokenizer", "bpe", vocab_size=400)
    return tok.train([text for _, text in embedded_documents()])


def test_a_long_document_gives_the_same_ids_in_pieces(tokenizer) -> None:  # type: ignore[no-untyped-def]
    long = one_line(60_000) + "  \n\n  trailing   spaces and 12345 digits"
    whole = tokenizer.encode(long)
    tokenizer.piece_chars = 1000  # this instance now encodes anything longer in pieces
    try:
        assert tokenizer.encode(long) == whole
        short = "The with statement."
        assert tokenizer.encode_batch([short, long, short], eos=True) == [
            tokenizer.encode(short, eos=True), [*whole, tokenizer.eos_id], tokenizer.encode(short, eos=True)]
    finally:
        del tokenizer.piece_chars
    assert tokenizer.encode_batch([long]) == [whole]


def test_training_on_a_long_document_in_pieces_learns_the_same_vocabulary() -> None:
    long = one_line(40_000)
    whole = get_registry().build("tokenizer", "bpe", vocab_size=320).train([long])
    pieces = get_registry().build("tokenizer", "bpe", vocab_size=320)
    pieces.piece_chars = 500
    assert pieces.train([long]).to_json() == whole.to_json()


def test_minhash_over_blocks_equals_the_one_matrix_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    text = one_line(30_000)
    words = dedup_key_text(text).split(" ")
    shingles = ngram_hashes(stable_word_keys(words), 5)
    h32 = (shingles ^ (shingles >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
    a, b = dedup._permutations(112, 1)
    reference = ((a * h32[None, :] + b) & np.uint64(0xFFFFFFFF)).min(axis=1).astype(np.uint32)
    monkeypatch.setattr(dedup, "_SHINGLE_BLOCK", 1000)  # several blocks for this document
    assert len(h32) > 3000
    assert np.array_equal(dedup.minhash_values(text), reference)
    assert np.array_equal(dedup.minhash_values("one two"), dedup.minhash_values("One  two"))
