"""Terminal output for the CLI: rich tables on a terminal when rich is installed, plain text otherwise."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import textwrap
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from registry_core.cli._records import jsonable

__all__ = ["json_stdout", "print_json", "print_table", "table_width", "use_rich"]

#: The last column is never wrapped narrower than this, however narrow the terminal.
_MIN_LAST_COLUMN = 24


def use_rich(stream: TextIO) -> bool:
    """Rich output only on an interactive terminal, and only when rich is installed."""
    if not stream.isatty():
        return False
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


#: Where a ``--json`` command's document goes: the real stdout, set aside while the command runs (see
#: :func:`json_stdout`), so that whatever else prints (a plugin at import, a library) cannot corrupt it.
_json_stream: TextIO | None = None


@contextlib.contextmanager
def json_stdout(enabled: bool) -> Iterator[None]:
    """While a ``--json`` command runs, stdout is stderr for everyone but :func:`print_json`."""
    global _json_stream
    if not enabled:
        yield
        return
    saved, _json_stream = _json_stream, sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _json_stream = saved


def print_json(value: Any, stream: TextIO | None = None) -> None:
    """``value`` as an indented JSON document: the one thing a ``--json`` command prints on stdout."""
    stream = stream or _json_stream or sys.stdout
    json.dump(jsonable(value), stream, indent=2)
    stream.write("\n")


def print_table(
    rows: Sequence[Sequence[str]], headers: Sequence[str], title: str | None = None, stream: TextIO | None = None
) -> None:
    """A table with a header row; columns padded to width, the last column left ragged (wrapped to a terminal's
    width, never when ``stream`` is a pipe or file)."""
    stream = stream or sys.stdout
    if use_rich(stream):
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        # Cells as Text, not markup: "list[str]" and "[>= 1]" must print as they are.
        table = Table(title=title, title_justify="left", show_edge=False)
        for h in headers:
            table.add_column(Text(str(h)))
        for r in rows:
            table.add_row(*(Text(str(c)) for c in r))
        Console(file=stream).print(table)
        return
    if title:
        stream.write(f"{title}\n")
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    indent = 2 + sum(w + 2 for w in widths[:-1])  # where the last column starts
    total = table_width(stream)
    room = None if total is None else max(total - indent, _MIN_LAST_COLUMN)
    for r in [headers, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(r[:-1], widths[:-1])]
        last = textwrap.wrap(str(r[-1]), room, break_on_hyphens=False) if room else [str(r[-1])]
        stream.write(("  " + "  ".join([*cells, last[0] if last else ""])).rstrip() + "\n")
        for more in last[1:]:
            stream.write(" " * indent + more + "\n")


def table_width(stream: TextIO) -> int | None:
    """Columns to wrap a table to on a terminal (its width; ``COLUMNS`` wins, as in ``shutil``); None (no
    wrapping) when ``stream`` is not a terminal, so piped output and files do not depend on where they ran."""
    if hasattr(stream, "isatty") and stream.isatty():
        return shutil.get_terminal_size().columns
    return None
