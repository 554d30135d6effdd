"""Loading what a ``"package.module:attr"`` target names: component factories, plugin commands, hooks' helpers."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal

from registry_core._errors import ComponentLoadError, PluginError
from registry_core._spec import CommandSpec, ComponentSpec, parse_target

__all__ = ["import_target", "load_command", "load_target"]


def load_target(target: str) -> Any:
    """The object a ``"package.module:attr.sub"`` target names, importing its module (ValueError if malformed)."""
    module_name, attr = parse_target(target)
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def import_target(spec: ComponentSpec) -> Any:
    """Import ``spec.target``; failures raise ComponentLoadError naming component, plugin and target."""
    try:
        return load_target(spec.target)
    except Exception as exc:
        raise ComponentLoadError(
            f"cannot load {spec.kind} {spec.id!r} from plugin {spec.plugin!r}: importing target "
            f"{spec.target!r} failed with {type(exc).__name__}: {exc}"
        ) from exc


def load_command(command: CommandSpec, part: Literal["arguments", "handler"]) -> Callable[..., Any]:
    """A plugin command's arguments function or handler; PluginError naming command, plugin and target."""
    target = getattr(command, part)
    try:
        fn = load_target(target)
    except Exception as exc:
        raise PluginError(
            f"command {command.name!r} of plugin {command.plugin!r} cannot be loaded: importing its {part} "
            f"{target!r} failed with {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(fn):
        raise PluginError(f"command {command.name!r} of plugin {command.plugin!r}: {part} {target!r} is not callable")
    return fn
