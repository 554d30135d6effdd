"""The errors of registry_gfm's datacubes and deployment, in one place so every reader and writer raises the same type."""

from __future__ import annotations

from registry_core import RegistryCoreError

__all__ = ["DatacubeError", "IncompleteStoreError", "PredictError", "SchedulerError"]


class DatacubeError(RegistryCoreError, ValueError):
    """A datacube store that cannot be used as asked: missing, incomplete, malformed, another ingest's,
    or lacking a band; the message names the store path."""


class IncompleteStoreError(DatacubeError):
    """The store exists but its ingest has not finished; rerun the ingest to complete it."""


class PredictError(RegistryCoreError, ValueError):
    """``predict`` cannot run as asked: a bad option, input scene, model or output path; the message names it
    and says what was expected."""


class SchedulerError(RegistryCoreError, ValueError):
    """A dask scheduler that is malformed, does not answer or is not a scheduler; the message names its address."""
