"""Regenerate pairs.jsonl: instruction pairs from Python's own documentation topics (``pydoc_data.topics``).

Each topic's title becomes a question and the first paragraph of its text the answer (whitespace collapsed, cut
after the last full sentence within 320 characters). Run with the interpreter whose documentation to use:

    .venv/bin/python tests/data/pydoc_pairs/make_pairs.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from pydoc_data.topics import topics

OUT = Path(__file__).with_name("pairs.jsonl")
MAX_CHARS = 320


def first_paragraph(text: str) -> str:
    """The first paragraph that is prose: not a title, an underline or an indented grammar block."""
    for block in re.split(r"\n\s*\n", text):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if not lines or (all(set(ln.strip()) <= set("=-*^~") for ln in lines[1:2]) and len(lines) <= 2):
            continue
        if lines[0].startswith((" ", "\t")):
            continue
        prose = " ".join(ln.strip() for ln in lines)
        if len(prose.split()) >= 8:
            return prose
    return ""


def shorten(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    cut = text[:MAX_CHARS]
    end = max(cut.rfind(". "), cut.rfind(".\n"))
    return cut[: end + 1] if end > 40 else cut.rsplit(" ", 1)[0] + " ..."


def main() -> None:
    rows = []
    for name in sorted(topics):
        answer = shorten(first_paragraph(topics[name]))
        if answer:
            title = name.replace("-", " ")
            rows.append({"prompt": f"What does the Python documentation say about {title}?", "response": answer,
                         "topic": name})
    with OUT.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} pairs from Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
