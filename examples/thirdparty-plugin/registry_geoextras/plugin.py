"""The plugin module the entry point ``geoextras`` names: hooks returning specs, nothing heavy imported."""

from __future__ import annotations

from registry_core import ComponentSpec, KindSpec, hookimpl
from registry_geoextras.specs import KINDS, SPECS


@hookimpl
def registry_core_kinds() -> list[KindSpec]:
    return KINDS


@hookimpl
def registry_core_components() -> list[ComponentSpec]:
    return SPECS
