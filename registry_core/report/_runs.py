"""Reading run folders for the report: every folder checked before anything is drawn or written.

A run folder is what ``run --out`` (or ``Pipeline.save``) writes: ``pipeline.toml`` always, usually
``pipeline.lock.json``, ``metrics.jsonl`` and ``summary.json``. A problem is a :class:`ReportError` whose
message names the folder or file and says what was expected.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from registry_core._errors import RegistryCoreError
from registry_core.atomic import file_inside
from registry_core.report import ReportRun

__all__ = ["ReportError", "read_runs"]


class ReportError(RegistryCoreError, ValueError):
    """A report cannot be made: a run folder or artifact is missing or unreadable, or the output is in the way."""


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path} is not readable JSON: {exc}") from None


def _metrics(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The records of ``metrics.jsonl``, and a note for each line skipped (not UTF-8, not a JSON object: a log
    torn by a crash, or bytes from elsewhere), naming file and line."""
    if not path.is_file():
        return [], []
    rows, notes = [], []
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            notes.append(f"{path}:{number} is not a JSON record ({exc}); line skipped")
            continue
        if not isinstance(record, dict):
            notes.append(f"{path}:{number} is not a JSON object ({raw[:60]!r}); line skipped")
            continue
        rows.append(record)
    return rows, notes


def read_run(path: Path, label: str) -> ReportRun:
    """One run folder; ReportError when it is missing or is not a run folder."""
    if not path.exists():
        raise ReportError(f"run folder {path} does not exist")
    if not path.is_dir():
        raise ReportError(f"{path} is not a run folder (a file); expected a folder written by `run --out`")
    config_path, lock_path, summary_path, metrics_path = (
        file_inside(path, name) for name in ("pipeline.toml", "pipeline.lock.json", "summary.json", "metrics.jsonl"))
    if not config_path.is_file():
        raise ReportError(f"{path} is not a run folder: it has no pipeline.toml (expected a folder written by "
                          "`python -m registry_core run --out` or Pipeline.save)")
    try:
        config = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ReportError(f"{config_path} is not valid TOML: {exc}") from None
    lock = _json(lock_path) if lock_path.is_file() else {}
    summary = _json(summary_path) if summary_path.is_file() else {}
    for name, value in (("pipeline.lock.json", lock), ("summary.json", summary)):
        if not isinstance(value, dict):
            raise ReportError(f"{path / name} should hold a JSON object, got {type(value).__name__}")
    metrics, notes = _metrics(metrics_path)
    return ReportRun(path, label, config, lock, summary, metrics, notes)


def _labels(paths: Sequence[Path]) -> list[str]:
    """Each folder's name, numbered (``-2``, ``-3``) when two runs share one; safe as a file-name prefix."""
    labels: list[str] = []
    seen: dict[str, int] = {}
    for p in paths:
        base = "".join(c if c.isalnum() or c in "-_." else "-" for c in (p.resolve().name or "run"))
        seen[base] = seen.get(base, 0) + 1
        labels.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return labels


def read_runs(paths: Sequence[Path]) -> list[ReportRun]:
    """Every run folder, in order; the first problem raises ReportError. The same folder twice is an error."""
    resolved = [p.resolve() for p in paths]
    for i, p in enumerate(resolved):
        if p in resolved[:i]:
            raise ReportError(f"run folder {paths[i]} is given twice")
    return [read_run(p, label) for p, label in zip(paths, _labels(paths))]
