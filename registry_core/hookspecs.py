"""Hook specifications of the registry itself: components, kinds, building, modalities, ports and commands.

A plugin is a module (or object) registered through the entry-point group ``registry_core``; it marks
its implementations with :data:`hookimpl`. The layers above the kernel declare their own hooks beside their
code: ``registry_core.report.hookspecs`` (figures and key figures of a report) and ``registry_core.cli.hookspecs``
(options and output of ``run``); the registry checks a plugin against all of them when it loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pluggy

if TYPE_CHECKING:
    from registry_core._spec import CommandSpec, ComponentSpec, KindSpec, ModalitySpec, PortSpec

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
