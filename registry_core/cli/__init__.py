"""The command line (``python -m registry_core``): parses, calls the library, prints; one ``error:`` line per failure.

``_main`` holds browsing (list, show, plugins, doctor) and the parser; ``_run`` check / run / ingest / generate;
``_export``, ``_report`` and the docs generator their commands; ``_commands`` plugin commands; ``_errors`` the
one error boundary; ``_render`` tables and JSON for a terminal or a pipe.
"""

from __future__ import annotations

from registry_core.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
