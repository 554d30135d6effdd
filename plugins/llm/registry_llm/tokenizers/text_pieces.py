"""Long texts cut into bounded pieces at pre-token boundaries, so tokenizing one needs bounded memory.

The library's encoder keeps about 400 bytes per token of a text it encodes in one call (ids, offsets,
token strings), so a 19 MB single-line document peaked at several GB. A cut is made only before a single
space that has non-space on both sides: both byte-level patterns (GPT-2's and the tiktoken ones) start a
pre-token there, so the pieces give the same tokens as the whole text. A piece without such a space
(e.g. a megabyte of digits) is cut hard at the bound, the one place tokens may differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

__all__ = ["PIECE_CHARS", "text_pieces"]

#: Characters of the largest piece encoded (or trained on) in one call.
PIECE_CHARS: Final = 1 << 20


def _cut(text: str, start: int, end: int) -> int:
    """The last safe cut in ``text[start + 1:end]`` (before a space between two non-spaces), else ``end``."""
    i = text.rfind(" ", start + 1, end)
    while i > start:
        if not text[i - 1].isspace() and i + 1 < len(text) and not text[i + 1].isspace():
            return i
        i = text.rfind(" ", start + 1, i)
    return end


def text_pieces(text: str, max_chars: int = PIECE_CHARS) -> Iterator[str]:
    """Consecutive slices of ``text``, each at most ``max_chars`` long, that join back into ``text``."""
    if max_chars < 2:
        raise ValueError(f"max_chars must be >= 2, got {max_chars}")
    start = 0
    while len(text) - start > max_chars:
        cut = _cut(text, start, start + max_chars)
        yield text[start:cut]
        start = cut
    yield text[start:]
