"""Progress of ingest and predict on stderr: a tqdm bar on a terminal, plain lines anywhere else.

A bar redraws itself with carriage returns, which a log file, a CI log or a pipe keeps as one long line that the
next output runs into; off a terminal the work is therefore reported as one ended line at each tenth reached.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Protocol, TextIO

__all__ = ["Progress", "on_terminal", "progress_bar"]


class Progress(Protocol):
    """What the work reports to: ``update(n)`` when ``n`` more units are done."""

    def update(self, n: int = 1) -> object: ...


def on_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (a closed or odd stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _Silent:
    """Progress of a run told to be quiet: counts nothing, prints nothing."""

    def update(self, n: int = 1) -> None:
        pass


class TenthLines:
    """Progress off a terminal: one line, ``LABEL: DONE/TOTAL UNITs (P%)``, each time the work reaches another
    tenth (10%, 20%, ... 100%); an update that crosses several tenths at once prints one line."""

    def __init__(self, total: int, label: str, unit: str, stream: TextIO) -> None:
        self.total, self.label, self.unit, self.stream = total, label, unit, stream
        self.done = 0
        self.tenths = 0

    def update(self, n: int = 1) -> None:
        self.done += n
        tenths = min(10, self.done * 10 // max(self.total, 1))
        if tenths > self.tenths:
            self.tenths = tenths
            percent = self.done * 100 // max(self.total, 1)
            print(f"{self.label}: {self.done}/{self.total} {self.unit}s ({percent}%)", file=self.stream, flush=True)


@contextlib.contextmanager
def progress_bar(total: int, desc: str, unit: str, *, enabled: bool = True,
                 stream: TextIO | None = None) -> Iterator[Progress]:
    """Progress of ``total`` units on ``stream`` (default stderr): nothing unless ``enabled``; a tqdm bar on a
    terminal, left in place with its line ended when the block exits; :class:`TenthLines` anywhere else."""
    out = sys.stderr if stream is None else stream
    if not enabled:
        yield _Silent()
        return
    if not on_terminal(out):
        yield TenthLines(total, desc, unit, out)
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, file=out, leave=True, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()  # draws the last state and ends its line: what follows starts on a line of its own
