"""The embedded default corpus: the help topics of Python's own ``pydoc_data/topics.py``.

Every CPython ships it: about 80 documents (460 kB) of real English reference prose with some code,
so tests, examples and the ``gpt-tiny`` recipe need no download. One topic is one document, in
sorted topic order. Source: the CPython documentation (PSF license).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator

__all__ = ["EMBEDDED_ORIGIN", "embedded_documents", "embedded_fingerprint"]

EMBEDDED_ORIGIN = "pydoc_data/topics.py"


def _topics() -> dict[str, str]:
    from pydoc_data.topics import topics  # deferred: 460 kB of strings, only needed here

    return dict(topics)


def embedded_documents() -> Iterator[tuple[str, str]]:
    """``(origin, text)`` for each topic, ``origin`` being ``pydoc_data/topics.py:<topic>``."""
    topics = _topics()
    for key in sorted(topics):
        yield f"{EMBEDDED_ORIGIN}:{key}", topics[key]


def embedded_fingerprint() -> dict[str, str | int]:
    """What identifies this interpreter's copy of the corpus (for the manifest's up-to-date check)."""
    digest = hashlib.sha256()
    size = 0
    for origin, text in embedded_documents():
        data = text.encode("utf-8")
        size += len(data)
        digest.update(origin.encode("utf-8") + b"\0" + data + b"\0")
    return {"path": EMBEDDED_ORIGIN, "python": sys.version.split()[0], "size": size, "sha256": digest.hexdigest()}
