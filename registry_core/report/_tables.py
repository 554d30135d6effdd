"""The report's tables: one summary row per run, the registry (kinds, plugins, components) and each run's lock.

Pure data to text: nothing here draws, imports a plugin's code or anything heavy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry_core._registry import Registry
from registry_core.report import ReportRun
from registry_core.report._html import Table

__all__ = ["SUMMARY_HEADERS", "lock_tables", "registry_tables", "shown_path", "summary_row"]

SUMMARY_HEADERS = ("run", "pipeline", "steps", "train loss", "val loss", "key figures")


def fmt(value: Any) -> str:
    """A number in 4 significant digits (integers whole); anything else as text; None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _last(run: ReportRun, key: str) -> Any:
    """The last value of ``key`` logged in metrics.jsonl (None when never logged)."""
    for record in reversed(run.metrics):
        if key in record:
            return record[key]
    return None


def summary_row(run: ReportRun, key_figures: Mapping[str, float | str]) -> list[str]:
    """run, pipeline, steps, final train loss, val loss, key figures: from summary.json, else metrics.jsonl."""
    val = run.summary.get("val")
    val_loss = val.get("loss") if isinstance(val, Mapping) else None
    steps = run.summary.get("step", _last(run, "step"))
    loss = run.summary.get("loss", _last(run, "loss"))
    figures = ", ".join(f"{k} {fmt(v)}" for k, v in key_figures.items()) or "-"
    return [run.label, run.name, fmt(steps), fmt(loss), fmt(val_loss if val_loss is not None else _last(run, "val_loss")),
            figures]


def registry_tables(reg: Registry) -> list[Table]:
    """Kinds (with who declares them), plugins (distribution, version, status) and every component."""
    kinds = Table(["kind", "summary", "declared by"],
                  [[k.name, k.summary, k.plugin or "registry_core"] for k in reg.kinds().values()], "Component kinds")
    plugins = Table(["plugin", "distribution", "version", "status", "components"],
                    [[p.name, p.distribution or "-", p.version or "-", p.status, str(p.components)]
                     for p in reg.plugins()], "Plugins")
    rows = []
    for spec in reg.list():
        d = reg.describe(spec)
        provider = f"{d['distribution'] or d['plugin']} {d['version'] or ''}".strip()
        status = d["status"] if not d["replaced_by"] else f"replaced by {d['replaced_by']}"
        rows.append([d["kind"], d["id"], d["modality"], provider, status, d["summary"]])
    components = Table(["kind", "component", "modality", "provider", "status", "summary"], rows, "Components")
    return [kinds, plugins, components]


def shown_path(path: str | Path, base: Path) -> str:
    """``path`` as the report shows it: relative to ``base`` (a run's folder or the report's), never absolute, so
    the page reads the same wherever the runs lie. A relative ``path`` is already relative to ``base``."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return Path(os.path.relpath(p, base.resolve())).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return p.name


def lock_tables(run: ReportRun, root: Path) -> list[Table]:
    """A run's lock: each slot's component, provider and version; each recorded file with its sha256. The lock's
    path is shown relative to the report's folder ``root``, each file's relative to the run's folder (the lock
    records the files a run used from elsewhere, such as another run's weights, by absolute path)."""
    components = [[str(c.get("slot", "")), str(c.get("kind", "")), str(c.get("id", "")),
                   f"{c.get('distribution') or '-'} {c.get('version') or ''}".strip(), str(c.get("target", ""))]
                  for c in run.components()]
    lock = shown_path(run.path.resolve() / "pipeline.lock.json", root)
    tables = [Table(["slot", "kind", "component", "provider", "target"], components, f"{run.label}: components ({lock})")]
    files = run.lock.get("files")
    if isinstance(files, Mapping) and files:
        rows = [[str(name), shown_path(str(rec.get("path", "")), run.path), str(rec.get("sha256", ""))[:16]]
                for name, rec in files.items() if isinstance(rec, Mapping)]
        tables.append(Table(["file", "path (from the run's folder)", "sha256 (first 16)"], rows, f"{run.label}: files"))
    return tables
