"""The core's own hook implementations: the default way to build a component."""

from __future__ import annotations

import importlib
from typing import Any

from registry_core._errors import ComponentLoadError
from registry_core._spec import ComponentSpec, parse_target
from registry_core.hookspecs import hookimpl

__all__ = ["import_target"]


def import_target(spec: ComponentSpec) -> Any:
    """Import ``spec.target``; failures raise ComponentLoadError naming component, plugin and target."""
    module_name, attr = parse_target(spec.target)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise ComponentLoadError(
            f"cannot load {spec.kind} {spec.id!r} from plugin {spec.plugin!r}: importing target "
            f"{spec.target!r} failed with {type(exc).__name__}: {exc}"
        ) from exc
    return obj


@hookimpl(trylast=True)
def registry_core_build_component(spec: ComponentSpec, config: Any) -> Any:
    factory = import_target(spec)
    return factory(config) if config is not None else factory()
