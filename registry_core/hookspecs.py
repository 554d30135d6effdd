"""Hook specifications of registry_core: what a plugin may implement.

A plugin is a module (or object) registered through the entry-point group ``registry_core``; it marks
its implementations with :data:`hookimpl`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pluggy

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from registry_core._spec import CommandSpec, ComponentSpec, KindSpec, ModalitySpec, PortSpec
    from registry_core.report import ReportFigure, ReportRun

__all__ = ["PROJECT", "hookimpl", "hookspec"]

#: The pluggy project name, also the entry-point group.
PROJECT: Final = "registry_core"

hookspec: Final = pluggy.HookspecMarker(PROJECT)
hookimpl: Final = pluggy.HookimplMarker(PROJECT)


@hookspec
def registry_core_components() -> list[ComponentSpec]:
    """Return this plugin's component specs; called once per plugin when the registry loads."""
    raise NotImplementedError


@hookspec
def registry_core_kinds() -> list[KindSpec]:
    """Return new component kinds this plugin declares (beyond the core kinds)."""
    raise NotImplementedError


@hookspec(firstresult=True)
def registry_core_build_component(spec: ComponentSpec, config: Any) -> Any:
    """Build one component from its spec and validated config; the first non-None result wins.

    The core's own implementation runs last and imports ``spec.target``. A plugin can observe or wrap
    every build with a ``@hookimpl(wrapper=True)`` implementation, or build some specs itself.
    """
    raise NotImplementedError


@hookspec
def registry_core_modalities() -> list[ModalitySpec]:
    """Return modalities this plugin's components use (the core declares only ``any``).

    Several plugins may declare one modality (two imagery stacks both say ``imagery``); the first summary is kept.
    """
    raise NotImplementedError


@hookspec
def registry_core_ports() -> list[PortSpec]:
    """Return contract ports this plugin declares: meaning, wiring order, how values compare and differ.

    A port name may be declared once across the core and all plugins; a second declaration is ignored
    and reported in ``Registry.problems``.
    """
    raise NotImplementedError


@hookspec
def registry_core_commands() -> list[CommandSpec]:
    """Return CLI sub-commands this plugin adds (``python -m registry_core NAME``).

    A name the core uses, or one a plugin earlier in name order adds, is ignored and reported in
    ``Registry.problems``.
    """
    raise NotImplementedError


@hookspec
def registry_core_report_figures(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """Draw this plugin's figures of one finished run as PNGs inside ``out_dir``; ``[]`` for a run it does not know.

    Called by ``python -m registry_core report`` for each run (import heavy modules inside the implementation).
    File names should start with ``run.label``. A failure is reported as a warning; the other figures stay.
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
