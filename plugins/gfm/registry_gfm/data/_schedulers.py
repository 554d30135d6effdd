"""The dask scheduler names that ingest and predict accept, checked before any dask import."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_LOCAL_WORKERS", "scheduler_problem"]

#: Most worker processes a ``local:N`` cluster may start (each one a Python process with its own GDAL cache).
MAX_LOCAL_WORKERS: Final = 256


def scheduler_problem(spec: str) -> str | None:
    """None when ``spec`` names a scheduler, else what is wrong with it (the caller adds where it came from)."""
    if spec in ("threads", "synchronous") or "://" in spec:
        return None
    match = re.fullmatch(r"local:([+-]?\d+)", spec)
    if match is None:
        return (f"{spec!r} is unknown; expected threads, synchronous, local:N (N worker processes) or a scheduler "
                "address such as tcp://host:8786")
    n = int(match.group(1))
    if not 1 <= n <= MAX_LOCAL_WORKERS:
        return f"{spec!r} asks for {n} worker processes; expected local:N with 1 <= N <= {MAX_LOCAL_WORKERS}"
    return None
