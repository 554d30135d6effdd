"""Document dedup: exact (hash of the normalised text) and near-duplicate MinHash LSH (datasketch).

Signatures are computed where documents are cleaned (possibly in worker processes); the index that
decides "seen before?" lives in the one process that writes shards, so the first copy in input order
is the one kept, whatever the number of workers.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

import numpy as np

from registry_llm.data.text_cleaning import dedup_key_text
from registry_llm.data.word_ngrams import ngram_hashes, stable_word_keys

__all__ = ["DedupIndex", "signature"]

#: datasketch's scheme for 32-bit values, named when an index entry is rebuilt from our values.
SCHEME = "affine32"
_MASK32 = np.uint64(0xFFFFFFFF)
#: Shingles hashed at once by ``minhash_values`` (bounds its temporary to num_perm x this x 8 bytes).
_SHINGLE_BLOCK = 1 << 14


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded affine maps ``h -> (a*h + b) mod 2**32`` (``a`` odd, so each is a bijection of 32-bit values)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << 31, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 1 << 32, size=num_perm, dtype=np.uint64)
    return a[:, None], b[:, None]


def minhash_values(text: str, *, ngram: int = 5, num_perm: int = 112, seed: int = 1) -> np.ndarray:
    """MinHash of the document's word ``ngram`` shingles: ``num_perm`` uint32 values (the minimum per map).

    Shingles are case-folded, whitespace-collapsed word n-grams (the whole text when shorter), hashed
    in numpy; datasketch's ``MinHash.update_batch`` hashes each shingle with sha1 in Python, which
    measured about 2x slower on the pydoc corpus. The values feed datasketch's ``MinHashLSH`` unchanged.
    """
    words = dedup_key_text(text).split(" ")
    keys = stable_word_keys(words)
    shingles = ngram_hashes(keys, min(ngram, len(words)))
    h32 = (shingles ^ (shingles >> np.uint64(32))) & _MASK32  # fold the 64-bit hash to 32 bits
    a, b = _permutations(num_perm, seed)
    # Over blocks of shingles: a (num_perm, all shingles) matrix would take 112 x 8 bytes per shingle.
    mins = np.full(num_perm, _MASK32, dtype=np.uint64)
    for at in range(0, len(h32), _SHINGLE_BLOCK):
        block = h32[None, at : at + _SHINGLE_BLOCK]
        np.minimum(mins, ((a * block + b) & _MASK32).min(axis=1), out=mins)
    return mins.astype(np.uint32)  # (num_perm,)


def signature(text: str, mode: str, *, ngram: int = 5, num_perm: int = 112, seed: int = 1) -> Any:
    """What the index needs of one document: a 16-byte digest (exact), MinHash values (minhash), or None."""
    if mode == "exact":
        return hashlib.blake2b(dedup_key_text(text).encode("utf-8"), digest_size=16).digest()
    if mode == "minhash":
        return minhash_values(text, ngram=ngram, num_perm=num_perm, seed=seed)
    return None


class DedupIndex:
    """Remembers kept documents; ``seen(sig)`` says whether one is an (exact or near) duplicate, else adds it.

    MinHash: ``bands`` x ``rows`` LSH (defaults 14 x 8 = 112 permutations, Jaccard threshold about 0.72);
    a document is a near duplicate when it shares a band with one already kept.
    """

    def __init__(self, mode: str, *, bands: int = 14, rows: int = 8, seed: int = 1) -> None:
        self.mode = mode
        self.seed = seed
        self.num_perm = bands * rows
        self._digests: set[bytes] = set()
        self._lsh: Any = None
        if mode == "minhash":
            from datasketch import MinHashLSH  # deferred: datasketch imports scipy (about 1 s)

            self._lsh = MinHashLSH(num_perm=self.num_perm, params=(bands, rows))
        self._count = 0

    def seen(self, sig: Any) -> bool:
        if self.mode == "exact":
            if sig in self._digests:
                return True
            self._digests.add(sig)
            return False
        if self._lsh is not None:
            from datasketch import MinHash

            mh = MinHash(num_perm=self.num_perm, seed=self.seed, hashvalues=sig, scheme=SCHEME)
            if self._lsh.query(mh):
                return True
            self._lsh.insert(self._count, mh, check_duplication=False)
            self._count += 1
        return False
