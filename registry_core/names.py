"""Renamed :mod:`registry_core.choices`; this name stays for plugins written against it."""

from __future__ import annotations

from registry_core.choices import *  # noqa: F403
from registry_core.choices import __all__  # noqa: F401
