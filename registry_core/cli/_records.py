"""The machine-readable record of one component (``show --json``), shared by ``show`` and ``docs``, and the JSON
form of any value the CLI prints."""

from __future__ import annotations

from typing import Any

from registry_core._registry import Registry
from registry_core._schema import describe_fields, resolve_config_class
from registry_core._spec import ComponentSpec

__all__ = ["jsonable", "show_record"]


def jsonable(value: Any) -> Any:
    """Port values and defaults as JSON: tuples become lists, anything exotic its repr."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


def show_record(reg: Registry, spec: ComponentSpec) -> dict[str, Any]:
    """``Registry.describe`` plus target, config schema, options (type, default, bounds, wiring) and ports."""
    record = reg.describe(spec)
    cls = resolve_config_class(spec)
    record["target"] = spec.target
    record["config"] = None if cls is None else f"{cls.__module__}:{cls.__qualname__}"
    preset = spec.card.loader_options() if spec.card is not None else {}  # a card's values are its defaults
    record["options"] = [
        {"name": f.name, "type": f.type, "default": jsonable(preset.get(f.name, f.default)),
         "required": f.required and f.name not in preset, "help": f.help, "min": f.min, "max": f.max,
         "choices": jsonable(f.choices), "wired": f.wired}
        for f in (describe_fields(cls) if cls else [])
    ]
    record["exporter"] = spec.exporter
    record["provides"] = jsonable(dict(spec.provides))
    record["requires"] = jsonable(dict(spec.requires))
    return record
