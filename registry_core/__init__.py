"""registry_core: a plugin registry of data sources and model components for foundation models.

Importing this package imports no plugin, torch, numpy or xarray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from registry_core._errors import (
    ComponentInterfaceError,
    ComponentLoadError,
    ConfigError,
    ConfigIssue,
    FileFormatError,
    NotFoundError,
    OutputPathError,
    PluginError,
    RegistryCoreError,
    UsageError,
)
from registry_core._kinds import CORE_KINDS
from registry_core._registry import ConflictError, PluginInfo, Registry, get_registry
from registry_core._schema import FieldInfo, describe_fields
from registry_core._spec import Card, CommandSpec, ComponentSpec, KindSpec, ModalitySpec, PortSpec, StacCard, option
from registry_core.choices import TransformerOptions
from registry_core.hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from registry_core import interfaces
    from registry_core.pipeline._compose import SLOTS
    from registry_core.pipeline._lock import LockMismatch
    from registry_core.pipeline._pipeline import Pipeline, compose
    from registry_core.pipeline._train_config import TrainConfig

#: Names imported on first use: browsing (``list``, ``show``) never needs composition or pipelines.
_LAZY = {
    "SLOTS": "registry_core.pipeline._compose",
    "LockMismatch": "registry_core.pipeline._lock",
    "Pipeline": "registry_core.pipeline._pipeline",
    "compose": "registry_core.pipeline._pipeline",
    "TrainConfig": "registry_core.pipeline._train_config",
}


def __getattr__(name: str) -> Any:
    if name == "interfaces":
        value: Any = importlib.import_module("registry_core.interfaces")
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'registry_core' has no attribute {name!r}")
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "CORE_KINDS",
    "SLOTS",
    "Card",
    "CommandSpec",
    "ComponentInterfaceError",
    "ComponentLoadError",
    "ComponentSpec",
    "ConfigError",
    "ConfigIssue",
    "ConflictError",
    "FieldInfo",
    "FileFormatError",
    "KindSpec",
    "LockMismatch",
    "ModalitySpec",
    "NotFoundError",
    "OutputPathError",
    "Pipeline",
    "PluginError",
    "PluginInfo",
    "PortSpec",
    "Registry",
    "RegistryCoreError",
    "StacCard",
    "TrainConfig",
    "TransformerOptions",
    "UsageError",
    "__version__",
    "compose",
    "describe_fields",
    "get_registry",
    "hookimpl",
    "hookspec",
    "interfaces",
    "option",
]
