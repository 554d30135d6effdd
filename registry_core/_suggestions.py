"""Name helpers: natural sort order and close-match suggestions."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

__all__ = ["close_matches", "natural_key", "nearest"]

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders ``vit-2`` before ``vit-10``."""
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in _DIGITS.split(text) if p)


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` candidates that look like ``word`` (for 'did you mean' hints)."""
    return difflib.get_close_matches(word, sorted(set(candidates)), n=n, cutoff=0.5)


def nearest(word: str, candidates: Iterable[str]) -> str | None:
    """The one candidate closest to a misspelt ``word``, or None when nothing is close."""
    found = close_matches(word, candidates, n=1)
    return found[0] if found else None
