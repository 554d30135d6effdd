"""Checks of what a plugin declares besides components: modalities, ports and CLI commands.

Each check raises PluginError with a sentence naming the declaration and what was expected; the registry
then reports the plugin as broken, as for a bad ComponentSpec.
"""

from __future__ import annotations

from typing import Any, TypeVar

from registry_core._errors import PluginError
from registry_core._spec import NAME_RE, CommandSpec, ModalitySpec, PortSpec, parse_target

__all__ = ["check_command", "check_modality", "check_port", "of_type"]

T = TypeVar("T")


def of_type(items: list[Any], cls: type[T], hook: str) -> list[T]:
    """``items`` when every one is a ``cls``; PluginError naming the first that is not."""
    for item in items:
        if not isinstance(item, cls):
            raise PluginError(f"{hook}() returned {item!r}, expected a {cls.__name__}")
    return items


def _text(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise PluginError(f"{what} is missing or empty")


def _target(value: Any, what: str) -> None:
    try:
        parse_target(value)
    except ValueError as exc:
        raise PluginError(f"{what}: {exc}") from None


def check_modality(m: ModalitySpec) -> ModalitySpec:
    if not isinstance(m.name, str) or not NAME_RE.match(m.name):
        raise PluginError(f"modality name {m.name!r} is not a valid name (lower-case, digits, '-', '_')")
    _text(m.summary, f"modality {m.name!r}: field 'summary'")
    return m


def check_port(p: PortSpec) -> PortSpec:
    if not isinstance(p.name, str) or not p.name.isidentifier():
        raise PluginError(f"port name {p.name!r} is not a valid name (a config field name such as 'bands')")
    label = f"port {p.name!r}"
    _text(p.description, f"{label}: field 'description'")
    if not all(isinstance(s, str) for s in p.wire_from):
        raise PluginError(f"{label}: wire_from must be slot names, got {p.wire_from!r}")
    for attr in ("compare", "explain"):
        fn = getattr(p, attr)
        if isinstance(fn, str):
            _target(fn, f"{label}: {attr}")
        elif fn is not None and not callable(fn):
            raise PluginError(f"{label}: {attr} must be a callable or a 'module:attr' string, got {fn!r}")
    return p


def check_command(c: CommandSpec) -> CommandSpec:
    if not isinstance(c.name, str) or not NAME_RE.match(c.name):
        raise PluginError(f"command name {c.name!r} is not a valid name (lower-case, digits, '-', '_')")
    label = f"command {c.name!r}"
    _text(c.help, f"{label}: field 'help'")
    _target(c.arguments, f"{label}: arguments")
    _target(c.handler, f"{label}: handler")
    return c
