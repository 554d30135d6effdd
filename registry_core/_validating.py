"""Which registry is validating a config right now: a context variable, so nested validations nest."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry_core._registry import Registry

__all__ = ["validating_registry", "validating_with"]

_VALIDATING: ContextVar[Registry | None] = ContextVar("registry_core_validating", default=None)


def validating_registry() -> Registry | None:
    """The registry validating a config in this context, or None outside any validation."""
    return _VALIDATING.get()


@contextmanager
def validating_with(registry: Registry | None) -> Iterator[None]:
    """Make ``registry`` the validating one inside the block (None: leave it as it is)."""
    if registry is None:
        yield
        return
    token = _VALIDATING.set(registry)
    try:
        yield
    finally:
        _VALIDATING.reset(token)
