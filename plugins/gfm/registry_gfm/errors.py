"""The errors of registry_gfm's datacubes, in one place so every reader and writer raises the same type."""

from __future__ import annotations

__all__ = ["DatacubeError", "IncompleteStoreError"]


class DatacubeError(ValueError):
    """A datacube store that cannot be used as asked: missing, incomplete, malformed, another ingest's,
    or lacking a band; the message names the store path."""


class IncompleteStoreError(DatacubeError):
    """The store exists but its ingest has not finished; rerun the ingest to complete it."""
