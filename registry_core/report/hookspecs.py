"""Hook specifications of the report (``python -m registry_core report``): a plugin's figures and key figures.

The registry adds them to its plugin manager by name (``HOOKSPEC_MODULES``), so a plugin implementing one is
checked when it loads; standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_core.hookspecs import hookspec

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from registry_core.report import ReportFigure, ReportRun, ReportTable

__all__ = ["registry_core_report_artifact", "registry_core_report_figures", "registry_core_report_metrics",
           "registry_core_report_tables"]


@hookspec
def registry_core_report_figures(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """Draw this plugin's figures of one finished run as PNGs inside ``out_dir``; ``[]`` for a run it does not know.

    Called by ``python -m registry_core report`` for each run (import heavy modules inside the implementation).
    File names should start with ``run.label``. A failure is reported as a warning; the other figures stay.
    """
    raise NotImplementedError


@hookspec
def registry_core_report_tables(run: ReportRun) -> list[ReportTable]:
    """This plugin's tables of one finished run (e.g. a model's answers before and after tuning); ``[]`` for none.

    Called by ``python -m registry_core report`` for each run, after its figures. Cells are plain text (escaped);
    a failure is reported as a warning and the rest of the report stays.
    """
    raise NotImplementedError


@hookspec
def registry_core_report_metrics(run: ReportRun) -> Mapping[str, float | str]:
    """The key figures of one run for the report's summary table (``{"perplexity": 9.2}``); ``{}`` for none.

    Read from ``run.summary`` (what its evaluators reported); should import nothing heavy.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def registry_core_report_artifact(path: Path, runs: Sequence[ReportRun], out_dir: Path) -> list[ReportFigure] | None:
    """Figures of a file a run made (``report --artifact``, e.g. a predicted map), drawn inside ``out_dir``.

    ``runs`` are the report's runs (the one that made the file may be among them). None: this plugin does not
    know the file; the first plugin that answers wins, and a file no plugin knows is an error.
    """
    raise NotImplementedError
