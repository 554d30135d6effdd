"""What the report hooks exchange: a finished run as read from its folder, and the figures plugins draw.

``python -m registry_core report`` reads each run folder into a :class:`ReportRun` and asks every plugin for
its :class:`ReportFigure` records (``registry_core_report_figures``), its :class:`ReportTable` records
(``registry_core_report_tables``: text that reads better as rows than as a picture, e.g. generated answers), its
key figures for the summary table (``registry_core_report_metrics``) and the figures of other files a run made
(``registry_core_report_artifact``).
Standard library only, so a plugin's light ``plugin.py`` may import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ReportFigure", "ReportRun", "ReportTable"]


@dataclass(frozen=True)
class ReportRun:
    """A finished run folder (``run --out`` or ``Pipeline.save``): its config, lock, summary and logged metrics."""

    #: The run folder.
    path: Path
    #: A short name unique within one report (the folder's name, numbered when two share one): file prefixes.
    label: str
    #: ``pipeline.toml`` as read.
    config: Mapping[str, Any]
    #: ``pipeline.lock.json`` (``{}`` when absent).
    lock: Mapping[str, Any] = field(default_factory=dict)
    #: ``summary.json`` written by ``run`` (``{}`` for a folder written by ``Pipeline.save`` alone).
    summary: Mapping[str, Any] = field(default_factory=dict)
    #: The records of ``metrics.jsonl``, in order (``[]`` when absent).
    metrics: Sequence[Mapping[str, Any]] = ()
    #: What reading the folder skipped (a torn or foreign line of ``metrics.jsonl``), for the report's problems.
    notes: Sequence[str] = ()

    @property
    def name(self) -> str:
        """The pipeline's name (``name`` in pipeline.toml), else the label."""
        name = self.config.get("name")
        return name if isinstance(name, str) and name else self.label

    def slot(self, slot: str) -> Mapping[str, Any]:
        """The options of one slot as saved (``{}`` when the pipeline has no such slot)."""
        table = self.config.get(slot)
        return table if isinstance(table, Mapping) else {}

    def evaluator_options(self, component_id: str) -> list[Mapping[str, Any]]:
        """The saved tables of the evaluators that ``use`` this qualified id (e.g. ``gfm:reconstruction``)."""
        tables = self.config.get("evaluators")
        if not isinstance(tables, list):
            return []
        return [t for t in tables if isinstance(t, Mapping) and t.get("use") == component_id]

    def evaluator(self, component_id: str) -> Mapping[str, Any]:
        """The metrics one evaluator reported in ``summary.json`` (``{}`` when it did not run)."""
        evaluators = self.summary.get("evaluators")
        found = evaluators.get(component_id) if isinstance(evaluators, Mapping) else None
        return found if isinstance(found, Mapping) else {}

    def components(self) -> list[Mapping[str, Any]]:
        """The lock's component records: slot, kind, id, target, distribution, version."""
        items = self.lock.get("components")
        return [c for c in items if isinstance(c, Mapping)] if isinstance(items, list) else []

    def uses(self, package: str, slot: str | None = None) -> bool:
        """Whether a component (of ``slot``, or any) was built from code in ``package`` (its lock ``target``)."""
        return any(str(c.get("target", "")).split(":")[0].split(".")[0] == package
                   for c in self.components() if slot is None or c.get("slot") == slot)


@dataclass(frozen=True)
class ReportFigure:
    """One figure of the report: a PNG inside the report folder, its heading, title and one-line caption."""

    #: The report section it goes under (``"Attention"``); sections appear in the order figures first name them.
    section: str
    title: str
    #: One line: what the figure shows.
    caption: str
    #: The PNG, written inside the report folder (the ``out_dir`` the hook was given).
    image: Path
    #: ``(label, "#rrggbb")`` colour swatches shown under the image (a categorical map's classes).
    legend: tuple[tuple[str, str], ...] = ()
    #: What the numbers say, in plain words, shown under the caption ("the pretrained encoder is not better
    #: than a random one here: ..."); empty: nothing to add.
    finding: str = ""


@dataclass(frozen=True)
class ReportTable:
    """One table of the report: a header row and rows of text cells (numbers right-aligned), under a section."""

    #: The report section it goes under; a section holds its tables before its figures.
    section: str
    #: One line above the table: what it shows.
    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
