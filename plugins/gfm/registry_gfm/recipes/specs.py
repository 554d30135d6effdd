"""The light manifest of this folder's components: config schemas and specs (no heavy imports)."""

from __future__ import annotations

from registry_core import ComponentSpec

SPECS: list[ComponentSpec] = []
