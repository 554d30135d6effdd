"""Document quality rules of Gopher's MassiveText (Rae et al. 2021, appendix A), each one switchable.

``quality_reason(text, rules)`` returns None for a kept document, or the name of the first rule it
breaks. A rule whose threshold is None is off. Words are whitespace-separated tokens; lines are
newline-separated; paragraphs are separated by blank lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from registry_llm.data.specs import RULE_THRESHOLDS
from registry_llm.data.word_ngrams import doc_word_ids, ngram_hashes

__all__ = ["RULE_NAMES", "QualityRules", "quality_reason"]

#: English stop words of the Gopher rule: a document must contain at least ``min_stop_words`` of them.
STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "●", "○", "▪", "▫", "■", "□", "‣", "⁃", "◦", "-", "*")
ELLIPSES = ("...", "…")
_PARAGRAPHS = re.compile(r"\n\s*\n")
_ALPHA = re.compile(r"[^\W\d_]")

#: Rule names as they appear in reject counts and the rejects file, in the order they are checked.
RULE_NAMES = tuple(RULE_THRESHOLDS)


@dataclass(frozen=True)
class QualityRules:
    """Thresholds (Gopher's defaults); None switches one rule off."""

    min_words: int | None = 50
    max_words: int | None = 100_000
    min_mean_word_length: float | None = 3.0
    max_mean_word_length: float | None = 10.0
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines: float | None = 0.9
    max_ellipsis_lines: float | None = 0.3
    min_alpha_words: float | None = 0.8
    min_stop_words: int | None = 2
    max_dup_line_fraction: float | None = 0.3
    max_dup_paragraph_fraction: float | None = 0.3
    max_dup_line_chars: float | None = 0.2
    max_dup_paragraph_chars: float | None = 0.2
    #: For word n-grams n = 2, 3, 4: the most frequent n-gram may cover at most this share of characters.
    max_top_ngram_chars: Sequence[float] | None = field(default=(0.20, 0.18, 0.16))
    #: For n = 5 .. 10: characters covered by n-grams seen more than once, at most this share.
    max_dup_ngram_chars: Sequence[float] | None = field(default=(0.15, 0.14, 0.13, 0.12, 0.11, 0.10))


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(number of items equal to an earlier one, their total characters)."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def _repetition_reason(text: str, lines: list[str], words: list[str], rules: QualityRules) -> str | None:
    total = max(len(text), 1)
    line_dups, line_dup_chars = _duplicates(lines)
    paras = [p.strip() for p in _PARAGRAPHS.split(text) if p.strip()]
    para_dups, para_dup_chars = _duplicates(paras)
    if rules.max_dup_line_fraction is not None and line_dups / max(len(lines), 1) > rules.max_dup_line_fraction:
        return "dup_line_fraction"
    para_limit = rules.max_dup_paragraph_fraction
    if para_limit is not None and para_dups / max(len(paras), 1) > para_limit:
        return "dup_paragraph_fraction"
    if rules.max_dup_line_chars is not None and line_dup_chars / total > rules.max_dup_line_chars:
        return "dup_line_chars"
    if rules.max_dup_paragraph_chars is not None and para_dup_chars / total > rules.max_dup_paragraph_chars:
        return "dup_paragraph_chars"

    return _ngram_reason(words, rules)


def _ngram_reason(words: list[str], rules: QualityRules) -> str | None:
    """The word n-gram rules, on 64-bit n-gram hashes (see word_ngrams)."""
    if len(words) < 2:
        return None
    ids = doc_word_ids(words)
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    word_chars = max(int(lengths.sum()), 1)
    if rules.max_top_ngram_chars is not None:
        for n, limit in zip(range(2, 5), rules.max_top_ngram_chars):
            grams = ngram_hashes(ids, n)
            if not len(grams):
                break
            _, first, counts = np.unique(grams, return_index=True, return_counts=True)
            top = int(np.argmax(counts))
            start = int(first[top])
            if counts[top] > 1 and counts[top] * lengths[start : start + n].sum() / word_chars > limit:
                return "top_ngram_chars"
    if rules.max_dup_ngram_chars is not None:
        for n, limit in zip(range(5, 11), rules.max_dup_ngram_chars):
            grams = ngram_hashes(ids, n)
            if not len(grams):
                break
            _, inverse, counts = np.unique(grams, return_inverse=True, return_counts=True)
            repeated = (counts[inverse] > 1).astype(np.int64)  # n-grams seen more than once start here
            covered = np.convolve(repeated, np.ones(n, dtype=np.int64))[: len(words)] > 0  # words inside one
            if lengths[covered].sum() / word_chars > limit:
                return "dup_ngram_chars"
    return None


def quality_reason(text: str, rules: QualityRules) -> str | None:
    """The first Gopher rule ``text`` breaks, or None when it passes them all."""
    words = text.split()
    n = len(words)
    if rules.min_words is not None and n < rules.min_words:
        return "too_few_words"
    if rules.max_words is not None and n > rules.max_words:
        return "too_many_words"
    if n == 0:
        return None if rules.min_words is None else "too_few_words"
    mean_len = sum(map(len, words)) / n
    if rules.min_mean_word_length is not None and mean_len < rules.min_mean_word_length:
        return "mean_word_length"
    if rules.max_mean_word_length is not None and mean_len > rules.max_mean_word_length:
        return "mean_word_length"
    if rules.max_symbol_word_ratio is not None:
        symbols = text.count("#") + text.count("...") + text.count("…")
        if symbols / n > rules.max_symbol_word_ratio:
            return "symbol_word_ratio"
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    n_lines = max(len(lines), 1)
    bullets = sum(ln.startswith(BULLETS) for ln in lines)
    if rules.max_bullet_lines is not None and bullets / n_lines > rules.max_bullet_lines:
        return "bullet_lines"
    ellipses = sum(ln.endswith(ELLIPSES) for ln in lines)
    if rules.max_ellipsis_lines is not None and ellipses / n_lines > rules.max_ellipsis_lines:
        return "ellipsis_lines"
    if rules.min_alpha_words is not None and sum(bool(_ALPHA.search(w)) for w in words) / n < rules.min_alpha_words:
        return "alpha_words"
    if rules.min_stop_words is not None:
        found = STOP_WORDS.intersection(w.lower() for w in words)
        if len(found) < rules.min_stop_words:
            return "stop_words"
    return _repetition_reason(text, lines, words, rules)
