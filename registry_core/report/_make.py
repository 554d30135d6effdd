"""``python -m registry_core report``: one HTML page over finished runs, their figures, the registry and the locks.

The core draws what every run has (training and validation curves from metrics.jsonl) and writes the
tables; plugins draw the rest through the report hooks (``registry_core.hookspecs``). Everything is
written into a temp folder beside ``out`` that replaces it at the end, so a failed report leaves nothing
behind and an earlier report stays until the new one is complete. Imports no torch: plugins do, inside
their hooks, when their figures need a model.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from registry_core._registry import Registry
from registry_core.atomic import mark_output, removal_problem, remove_written, replace_dir
from registry_core.report import ReportFigure, ReportRun, ReportTable
from registry_core.report._html import Section, Table, render_page
from registry_core.report._runs import ReportError, read_runs
from registry_core.report._tables import SUMMARY_HEADERS, lock_tables, registry_tables, summary_row

__all__ = ["ReportError", "ReportResult", "make_report"]

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
#: The page's file name inside the output folder.
INDEX: Final = "index.html"
#: The kind of output marker a report folder carries: only such a folder is replaced by the next report.
REPORT_KIND: Final = "report"


@dataclass
class ReportResult:
    """What a report wrote: the page, the summary rows, the figures and any problems met on the way."""

    index: Path
    rows: list[list[str]]
    figures: int
    warnings: list[str] = field(default_factory=list)


def _hook_impls(reg: Registry, hook: str) -> list[Any]:
    """A hook's implementations in plugin-name order (deterministic sections), each to be called on its own."""
    return sorted(getattr(reg.plugin_manager.hook, hook).get_hookimpls(), key=lambda impl: impl.plugin_name)


def _call(impl: Any, **kwargs: Any) -> Any:
    """Call one implementation with the arguments it declares (pluggy lets it take a subset)."""
    return impl.function(*[kwargs[name] for name in impl.argnames])


def _check_figure(fig: Any, root: Path, who: str) -> str | None:
    """Why a plugin's figure cannot be shown (not a ReportFigure, outside the folder, not a PNG), or None."""
    if not isinstance(fig, ReportFigure):
        return f"{who} returned {type(fig).__name__}, expected ReportFigure"
    image = Path(fig.image).resolve()
    if not image.is_relative_to(root.resolve()):
        return f"{who}: figure {fig.title!r} image {fig.image} is not inside the report folder"
    if not image.is_file():
        return f"{who}: figure {fig.title!r} image {fig.image} was not written"
    with image.open("rb") as fh:
        if fh.read(8) != PNG_SIGNATURE:
            return f"{who}: figure {fig.title!r} image {fig.image} is not a PNG"
    return None


def _check_table(table: Any, who: str) -> str | None:
    """Why a plugin's table cannot be shown (not a ReportTable, a row wider or narrower than the header), or None."""
    if not isinstance(table, ReportTable):
        return f"{who} returned {type(table).__name__}, expected ReportTable"
    for i, row in enumerate(table.rows):
        if len(row) != len(table.headers):
            return (f"{who}: table {table.caption!r} row {i} has {len(row)} cell(s), expected {len(table.headers)} "
                    "(one per header)")
    return None


class _Collector:
    """Figures and tables grouped by section in first-appearance order, and the problems met while asking plugins."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sections: dict[str, Section] = {}
        self.warnings: list[str] = []

    def section(self, title: str) -> Section:
        return self.sections.setdefault(title, Section(title))

    def ask(self, who: str, produce: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``produce(*args, **kwargs)``; an exception becomes a warning (with the traceback's last line) and None."""
        try:
            return produce(*args, **kwargs)
        except Exception as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self.warnings.append(f"{who} failed: {type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})")
            return None

    def add(self, who: str, figures: Any) -> None:
        if figures is None:
            return
        if not isinstance(figures, list | tuple):
            self.warnings.append(f"{who} returned {type(figures).__name__}, expected a list of ReportFigure")
            return
        for fig in figures:
            problem = _check_figure(fig, self.root, who)
            if problem:
                self.warnings.append(problem)
            else:
                self.section(fig.section).figures.append(fig)

    def add_tables(self, who: str, tables: Any) -> None:
        if tables is None:
            return
        if not isinstance(tables, list | tuple):
            self.warnings.append(f"{who} returned {type(tables).__name__}, expected a list of ReportTable")
            return
        for table in tables:
            problem = _check_table(table, who)
            if problem:
                self.warnings.append(problem)
            else:
                rows = [[str(cell) for cell in row] for row in table.rows]
                self.section(table.section).tables.append(Table(list(table.headers), rows, table.caption))


def _curves(run: ReportRun, root: Path) -> ReportFigure | None:
    """Training loss (every logged step) and validation loss (every evaluation) of one run."""
    from registry_core.report.figures import line_chart

    series: dict[str, tuple[list[float], list[float]]] = {}
    for key, label in (("loss", "train loss"), ("val_loss", "validation loss")):
        points = [(float(r["step"]), float(r[key])) for r in run.metrics
                  if isinstance(r.get(key), int | float) and isinstance(r.get("step"), int | float)]
        if points:
            series[label] = ([p[0] for p in points], [p[1] for p in points])
    if not series:
        return None
    image = line_chart(root / f"{run.label}-curves.png", series, title=run.name, xlabel="step", ylabel="loss")
    units = next((str(r["units"]) for r in run.metrics if "units" in r), "")
    what = ", ".join(f"{label} ({len(xs)} point{'s' if len(xs) != 1 else ''})" for label, (xs, _) in series.items())
    once = [label for label, (xs, _) in series.items() if len(xs) == 1]
    note = (f"; {' and '.join(once)} {'was' if len(once) == 1 else 'were'} logged once, so "
            f"{'it is' if len(once) == 1 else 'each is'} a marked point, not a line" if once else "")
    return ReportFigure("Training curves", f"{run.label}: loss by step", f"{what} from metrics.jsonl"
                        + (f"; throughput counted in {units}" if units else "") + note + ".", image)


def _key_figures(reg: Registry, run: ReportRun, collector: _Collector) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for impl in _hook_impls(reg, "registry_core_report_metrics"):
        who = f"plugin {impl.plugin_name!r} (key figures of {run.label})"
        found = collector.ask(who, _call, impl, run=run)
        if isinstance(found, Mapping):
            out.update({str(k): v for k, v in found.items()})
        elif found is not None:
            collector.warnings.append(f"{who} returned {type(found).__name__}, expected a mapping")
    return out


def _artifact_figures(reg: Registry, path: Path, runs: Sequence[ReportRun], collector: _Collector) -> None:
    """The first plugin that knows the file draws it; a file no plugin knows (and none failed on) is a ReportError."""
    tried, failed = [], False
    for impl in _hook_impls(reg, "registry_core_report_artifact"):
        who = f"plugin {impl.plugin_name!r} (artifact {path})"
        tried.append(impl.plugin_name)
        before = len(collector.warnings)
        found = collector.ask(who, _call, impl, path=path, runs=runs, out_dir=collector.root)
        if found is not None:
            collector.add(who, found)
            return
        failed = failed or len(collector.warnings) > before
    if not failed:
        known = ", ".join(tried) or "none installed"
        raise ReportError(f"no plugin can draw artifact {path} (plugins that draw files: {known})")


def _check_out(out: Path, runs: Sequence[ReportRun], artifacts: Sequence[Path]) -> None:
    if out.exists() and not out.is_dir():
        raise ReportError(f"output {out} is a file; expected a folder for the report")
    for path in artifacts:
        if not path.exists():
            raise ReportError(f"artifact {path} does not exist")
    problem = removal_problem(out, REPORT_KIND, inputs=_inputs(runs, artifacts))
    if problem:
        raise ReportError(f"--out: {problem}")


def _inputs(runs: Sequence[ReportRun], artifacts: Sequence[Path]) -> list[Path]:
    return [run.path for run in runs] + list(artifacts)


def _publish(tmp: Path, out: Path, runs: Sequence[ReportRun], artifacts: Sequence[Path]) -> None:
    """Mark the finished folder as a report and put it in place of ``out`` (an earlier report, removed after the swap)."""
    mark_output(tmp, REPORT_KIND)
    replace_dir(tmp, out, kind=REPORT_KIND, inputs=_inputs(runs, artifacts))


def make_report(run_dirs: Sequence[Path], out: Path, reg: Registry, artifacts: Sequence[Path] = ()) -> ReportResult:
    """Read the runs, draw every figure, write ``out/index.html``; ReportError (nothing written) on bad input."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ReportError("report draws its figures with matplotlib, which is not installed; "
                          "pip install 'registry-core[cli]'")
    if not run_dirs:
        raise ReportError("report needs at least one run folder")
    runs = read_runs(run_dirs)
    _check_out(out, runs, artifacts)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        result = _write(runs, artifacts, tmp, reg)
        _publish(tmp, out, runs, artifacts)
    except BaseException:
        remove_written(tmp)
        raise
    result.index = out / INDEX
    return result


def _write(runs: Sequence[ReportRun], artifacts: Sequence[Path], root: Path, reg: Registry) -> ReportResult:
    collector = _Collector(root)
    for run in runs:
        collector.warnings.extend(run.notes)
    rows = [summary_row(run, _key_figures(reg, run, collector)) for run in runs]
    curves = Section("Training curves", intro="Training and validation loss of every run, from its metrics.jsonl.")
    for run in runs:
        fig = collector.ask(f"curves of {run.label}", _curves, run, root)
        if fig is None:
            curves.notes.append(f"{run.label}: metrics.jsonl logs no loss to draw")
        else:
            curves.figures.append(fig)
    for run in runs:
        for impl in _hook_impls(reg, "registry_core_report_figures"):
            who = f"plugin {impl.plugin_name!r} (figures of {run.label})"
            collector.add(who, collector.ask(who, _call, impl, run=run, out_dir=root))
        for impl in _hook_impls(reg, "registry_core_report_tables"):
            who = f"plugin {impl.plugin_name!r} (tables of {run.label})"
            collector.add_tables(who, collector.ask(who, _call, impl, run=run))
    for path in artifacts:
        _artifact_figures(reg, path, runs, collector)
    sections = [Section("Summary", [Table(SUMMARY_HEADERS, rows)],
                        intro="One row per run: steps trained, the last train and validation loss, and the key "
                              "figures its evaluators reported."),
                curves]
    sections += list(collector.sections.values())
    if collector.warnings:
        sections.append(Section("Problems", notes=list(collector.warnings),
                                intro="Figures that could not be drawn; everything else is complete."))
    sections.append(Section("Registry", registry_tables(reg),
                            intro="Every kind, plugin and component the registry knows (as `list` shows them)."))
    sections.append(Section("Pipeline locks", [t for run in runs for t in lock_tables(run, root)],
                            intro="Each run's pipeline.lock.json: the provider and version of every slot's "
                                  "component and the sha256 of the files it used."))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"{len(runs)} run(s): {', '.join(r.label for r in runs)}; made {stamp} with Python {sys.version.split()[0]}"
    (root / INDEX).write_text(render_page("registry_core report", subtitle, sections, root), encoding="utf-8")
    count = len(curves.figures) + sum(len(s.figures) for s in collector.sections.values())
    return ReportResult(root / INDEX, rows, count, collector.warnings)
