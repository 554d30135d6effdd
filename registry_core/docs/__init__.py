"""The generated Markdown reference (``python -m registry_core docs OUT``): pages from specs, schemas and parsers.

Only the CLI's ``docs`` command and the docs test use it; nothing here is imported when browsing.
"""

from __future__ import annotations

from registry_core.docs._generate import (
    BUNDLED_DISTRIBUTIONS,
    add_docs_arguments,
    bundled_registry,
    cmd_docs,
    reference_pages,
    write_pages,
)

__all__ = ["BUNDLED_DISTRIBUTIONS", "add_docs_arguments", "bundled_registry", "cmd_docs", "reference_pages",
           "write_pages"]
