"""Word n-grams as 64-bit rolling hashes, so the repetition rules and MinHash run in numpy, not per n-gram.

``ngram_hashes(keys, n)[i]`` hashes words ``i .. i+n-1``: a polynomial in the word keys modulo 2**64
(numpy's uint64 arithmetic wraps). Two different n-grams share a hash with probability about 2**-64.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

__all__ = ["doc_word_ids", "ngram_hashes", "stable_word_keys"]

_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio): spreads the polynomial well


def _ids_and_vocab(words: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
    index: dict[str, int] = {}
    ids = [index.setdefault(w, len(index)) for w in words]
    return np.array(ids, dtype=np.uint64), index


def doc_word_ids(words: Sequence[str]) -> np.ndarray:
    """Exact per-document word ids (first-seen order) as uint64: equal words, equal ids."""
    return _ids_and_vocab(words)[0]


def stable_word_keys(words: Sequence[str]) -> np.ndarray:
    """Word keys equal across documents and processes (crc32 of the UTF-8 word, plus its length)."""
    ids, index = _ids_and_vocab(words)
    table = np.array([(zlib.crc32(w.encode("utf-8")) << 8) | (len(w) & 0xFF) for w in index], dtype=np.uint64)
    return table[ids.astype(np.intp)] if len(ids) else np.empty(0, dtype=np.uint64)


def ngram_hashes(keys: np.ndarray, n: int) -> np.ndarray:
    """Hash of every run of ``n`` consecutive keys (length ``len(keys) - n + 1``, empty if shorter)."""
    count = len(keys) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    h = (keys[:count] + np.uint64(1)).copy()
    for j in range(1, n):
        h = h * _MULT + keys[j : j + count] + np.uint64(1)
    return h
