"""Streaming documents out of local text files: ``.txt``, ``.jsonl`` and (with pyarrow) ``.parquet``.

``.txt``: one document per file, or with ``txt_documents="blank-lines"`` one per blank-line-separated
block. ``.jsonl``: one document per line, taken from field ``text_field``. Bytes that are not valid
UTF-8 and lines or files that cannot be read are *problems*: with ``errors="skip"`` each is counted
and reported to ``on_problem``; with ``errors="raise"`` the first one raises :class:`InputError`.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from registry_core import RegistryCoreError

__all__ = ["InputError", "expand_paths", "file_fingerprint", "read_documents"]

SUFFIXES = (".txt", ".jsonl", ".parquet")
_BLOCKS = re.compile(rb"\n[ \t\r]*\n")
#: Callback for a skipped input: (origin, reason), reason being "invalid_utf8" or "unreadable".
ProblemHook = Callable[[str, str], None]


class InputError(RegistryCoreError, ValueError):
    """An input file or line could not be read (raised with ``errors="raise"``)."""


def expand_paths(patterns: Sequence[str]) -> list[Path]:
    """Files matching ``patterns`` (globs, ``**`` recursive, ``~`` expanded), sorted, without repeats."""
    found: dict[str, Path] = {}
    for pattern in patterns:
        expanded = os.path.expanduser(pattern)
        matches = glob.glob(expanded, recursive=True) if glob.has_magic(expanded) else [expanded]
        for match in matches:
            p = Path(match)
            if p.is_dir():
                for sub in sorted(p.rglob("*")):
                    if sub.is_file() and sub.suffix in SUFFIXES:
                        found.setdefault(str(sub.resolve()), sub)
            elif p.is_file():
                if p.suffix not in SUFFIXES:
                    raise InputError(f"input {p} has an unsupported type; expected one of {', '.join(SUFFIXES)}")
                found.setdefault(str(p.resolve()), p)
    return [found[k] for k in sorted(found)]


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Path, size and modification time: enough to see that an input changed since the last build."""
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class _Problems:
    def __init__(self, errors: str, on_problem: ProblemHook) -> None:
        self.errors, self.on_problem = errors, on_problem

    def __call__(self, origin: str, reason: str, detail: str) -> None:
        if self.errors == "raise":
            raise InputError(f"{origin}: {detail}")
        self.on_problem(origin, reason)


def _decode(data: bytes, origin: str, problem: _Problems) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem(origin, "invalid_utf8", f"invalid UTF-8 at byte {exc.start} ({exc.reason}); expected UTF-8 text")
        return None


def _read_txt(path: Path, blocks: bool, problem: _Problems) -> Iterator[tuple[str, str]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        problem(str(path), "unreadable", f"cannot read file: {exc}")
        return
    if not blocks:
        text = _decode(data, str(path), problem)
        if text is not None:
            yield str(path), text
        return
    # Decode block by block so one bad byte costs one block, not the whole file.
    for i, block in enumerate(_BLOCKS.split(data)):
        if block.strip():
            origin = f"{path}#{i}"
            text = _decode(block, origin, problem)
            if text is not None:
                yield origin, text


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _read_jsonl(path: Path, field: str, problem: _Problems) -> Iterator[tuple[str, str]]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        problem(str(path), "unreadable", f"cannot read file: {exc}")
        return
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            origin = f"{path}:{lineno}"
            if not raw.strip():
                continue
            line = _decode(raw, origin, problem)
            if line is None:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                problem(origin, "unreadable", f"not a JSON line ({exc.msg} at column {exc.colno})")
                continue
            text = record.get(field) if isinstance(record, dict) else None
            if not isinstance(text, str):
                problem(origin, "unreadable", f"no string field {field!r} (set text_field to the right key)")
                continue
            if _has_surrogates(text):  # JSON escapes like "\ud800" decode to text no UTF-8 encoder accepts
                problem(origin, "invalid_utf8", "a lone surrogate escape in the JSON string; expected valid Unicode")
                continue
            yield origin, text


def _read_parquet(path: Path, field: str, problem: _Problems) -> Iterator[tuple[str, str]]:
    try:
        import pyarrow.parquet as pq  # optional: only for .parquet inputs
    except ImportError:
        raise InputError(f"{path}: reading .parquet needs pyarrow (pip install pyarrow)") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        problem(str(path), "unreadable", f"cannot read parquet file: {exc}")
        return
    if field not in pf.schema_arrow.names:
        raise InputError(f"{path}: no column {field!r}; columns are {', '.join(pf.schema_arrow.names)}")
    row = 0
    for batch in pf.iter_batches(columns=[field]):
        for value in batch.column(0).to_pylist():
            row += 1
            if isinstance(value, str):
                yield f"{path}:{row}", value
            else:
                problem(f"{path}:{row}", "unreadable", f"column {field!r} is not a string")


def read_documents(
    paths: Sequence[Path],
    *,
    text_field: str = "text",
    txt_documents: str = "file",
    errors: str = "skip",
    on_problem: ProblemHook = lambda origin, reason: None,
) -> Iterator[tuple[str, str]]:
    """``(origin, text)`` for every document of ``paths``, streaming file by file."""
    problem = _Problems(errors, on_problem)
    for path in paths:
        if path.suffix == ".jsonl":
            yield from _read_jsonl(path, text_field, problem)
        elif path.suffix == ".parquet":
            yield from _read_parquet(path, text_field, problem)
        else:
            yield from _read_txt(path, txt_documents == "blank-lines", problem)
