"""The command line (``python -m registry_core``): parses, calls the library, prints; one ``error:`` line per failure.

``_main`` holds browsing (list, show, plugins, doctor) and the parser; ``_run`` check / run / ingest; ``hookspecs`` the hooks of ``run``;
``_export``, ``_report`` and the docs generator their commands; ``_commands`` plugin commands; ``_errors`` the
one error boundary; ``_render`` tables and JSON for a terminal or a pipe.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry_core.cli._main import build_parser, main
    from registry_core.cli._render import print_json

__all__ = ["build_parser", "main", "print_json"]


def __getattr__(name: str) -> Any:
    """``main``, ``build_parser`` and ``print_json`` (what a plugin command prints for ``--json``), imported on first use: the registry reads ``cli.hookspecs`` alone."""
    if name in __all__:
        home = "registry_core.cli._render" if name == "print_json" else "registry_core.cli._main"
        return getattr(importlib.import_module(home), name)
    raise AttributeError(f"module 'registry_core.cli' has no attribute {name!r}")
