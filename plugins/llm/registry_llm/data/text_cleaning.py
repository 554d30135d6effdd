"""Text normalisation before filtering and dedup: Unicode NFC and whitespace that means the same thing.

Indentation is kept (code and verse depend on it); what changes: line endings become ``\\n``, exotic
spaces become a plain space, control and zero-width characters go, trailing spaces go, runs of blank
lines shrink to one, and the document is stripped.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_text", "dedup_key_text"]

_NEWLINES = re.compile(r"\r\n?|[\u2028\u2029\x0b\x0c\x85]")
_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
# C0/C1 controls except \t and \n, and zero-width characters (ZWSP, ZWNJ, ZWJ, word joiner, BOM).
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u200b-\u200d\u2060\ufeff]")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")
_ANY_SPACE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """NFC-normalise ``text`` and tidy its whitespace (see the module docstring)."""
    text = unicodedata.normalize("NFC", text)
    text = _NEWLINES.sub("\n", text)
    text = _SPACES.sub(" ", text)
    text = _INVISIBLE.sub("", text)
    text = _TRAILING.sub("\n", text + "\n")
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


def dedup_key_text(text: str) -> str:
    """The form exact dedup hashes: case-folded with all whitespace runs collapsed to one space."""
    return _ANY_SPACE.sub(" ", text.casefold()).strip()
