"""Moved to :mod:`registry_core.report.figures`; this name stays for plugins written against it."""

from __future__ import annotations

from registry_core.report.figures import *  # noqa: F403
from registry_core.report.figures import __all__  # noqa: F401
