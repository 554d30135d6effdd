"""The machine-readable record of one component (``show --json``), shared by ``show`` and ``docs``."""

from __future__ import annotations

from typing import Any

from registry_core._registry import Registry
from registry_core._render import jsonable
from registry_core._schema import describe_fields, resolve_config_class
from registry_core._spec import ComponentSpec

__all__ = ["show_record"]


def show_record(reg: Registry, spec: ComponentSpec) -> dict[str, Any]:
    """``Registry.describe`` plus target, config schema, options (type, default, bounds, wiring) and ports."""
    record = reg.describe(spec)
    cls = resolve_config_class(spec)
    record["target"] = spec.target
    record["config"] = None if cls is None else f"{cls.__module__}:{cls.__qualname__}"
    record["options"] = [
        {"name": f.name, "type": f.type, "default": jsonable(f.default), "required": f.required, "help": f.help,
         "min": f.min, "max": f.max, "choices": jsonable(f.choices), "wired": f.wired}
        for f in (describe_fields(cls) if cls else [])
    ]
    record["exporter"] = spec.exporter
    record["provides"] = jsonable(dict(spec.provides))
    record["requires"] = jsonable(dict(spec.requires))
    return record
