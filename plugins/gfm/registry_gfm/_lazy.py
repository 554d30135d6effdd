"""Lazy public names for a package ``__init__``: each is imported from its module on first read, so that
importing the package (as ``plugin.py`` does through the light ``specs`` manifests) loads nothing heavy."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` serving ``names`` (public name -> the module that defines it)."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(sys.modules[package], name, value)  # read once: later reads find it in the module
        return value

    return __getattr__
