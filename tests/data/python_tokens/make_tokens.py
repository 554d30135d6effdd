"""Regenerate snippets.jsonl: Python source from the standard library with every character span labelled by the kind
of token it is, as Python's own ``tokenize`` module reads it (keyword, name, number, string, comment, operator).

Each snippet is a top-level function of a few standard-library modules (its source as ``inspect`` gives it, at most
40 lines), with ``spans`` = ``[[start, end, label], ...]`` character offsets into ``text``. Run with the interpreter
whose standard library to use:

    .venv/bin/python tests/data/python_tokens/make_tokens.py
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import keyword
import sys
import tokenize
from pathlib import Path

MODULES = ("textwrap", "shlex", "fnmatch", "glob", "colorsys", "bisect", "heapq", "statistics", "calendar",
           "string", "difflib", "json.encoder", "json.decoder", "base64", "ipaddress", "fractions")
LABELS = ("keyword", "name", "number", "string", "comment", "operator")
MAX_LINES = 40
OUT = Path(__file__).with_name("snippets.jsonl")


def label_of(tok: tokenize.TokenInfo) -> str | None:
    if tok.type == tokenize.NAME:
        return "keyword" if keyword.iskeyword(tok.string) or keyword.issoftkeyword(tok.string) else "name"
    return {tokenize.NUMBER: "number", tokenize.STRING: "string", tokenize.COMMENT: "comment",
            tokenize.OP: "operator"}.get(tok.type)


def spans(source: str) -> list[list[object]]:
    """``[start, end, label]`` of every labelled token, as character offsets into ``source``."""
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    out: list[list[object]] = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        label = label_of(tok)
        if label is not None:
            a = starts[tok.start[0] - 1] + tok.start[1]
            b = starts[tok.end[0] - 1] + tok.end[1]
            out.append([a, b, label])
    return out


def main() -> None:
    import importlib

    rows = []
    for name in MODULES:
        module = importlib.import_module(name)
        tree = ast.parse(inspect.getsource(module))
        source = inspect.getsource(module).splitlines(keepends=True)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.end_lineno is not None:
                lines = source[node.lineno - 1:node.end_lineno]
                if len(lines) <= MAX_LINES:
                    text = "".join(lines)
                    rows.append({"text": text, "spans": spans(text), "object": f"{name}.{node.name}"})
    with OUT.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} snippets from Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
