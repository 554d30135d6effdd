"""Exact and MinHash near-duplicate detection on real prose (Python's own help topics)."""

from __future__ import annotations

from pydoc_data.topics import topics

from registry_llm.data.dedup import DedupIndex, signature
from registry_llm.data.text_cleaning import clean_text

ORIGINAL = clean_text(topics["exceptions"])


def near_copy(text: str) -> str:
    """A realistic near duplicate: a few words edited, a boilerplate line added, one sentence dropped."""
    edited = text.replace("exception", "error", 3).replace("handler", "catcher", 2)
    first_period = edited.index(". ") + 2
    return "Mirrored from docs.python.org.\n" + edited[first_period:] + "\nLast updated yesterday."


def run(mode: str, docs: list[str]) -> list[bool]:
    index = DedupIndex(mode)
    return [index.seen(signature(d, mode)) for d in docs]


def test_exact_dedup_catches_case_and_whitespace_copies_only() -> None:
    spaced = ORIGINAL.upper().replace(" ", "  \n")
    assert run("exact", [ORIGINAL, spaced, near_copy(ORIGINAL)]) == [False, True, False]


def test_minhash_catches_real_near_duplicates_and_keeps_distinct_topics() -> None:
    others = [clean_text(topics[k]) for k in ("for", "class", "import", "lambda", "while")]
    docs = [ORIGINAL, *others, near_copy(ORIGINAL), near_copy(others[1])]
    assert run("minhash", docs) == [False, False, False, False, False, False, True, True]


def test_minhash_signature_is_deterministic_and_sized_by_bands_times_rows() -> None:
    a = signature(ORIGINAL, "minhash", num_perm=112, seed=1)
    b = signature(ORIGINAL, "minhash", num_perm=112, seed=1)
    assert len(a) == 112 and (a == b).all()
    assert signature(ORIGINAL, "none") is None
    assert run("none", [ORIGINAL, ORIGINAL]) == [False, False]
