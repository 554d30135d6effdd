"""Exceptions of registry_core; each names the thing at fault and what was expected."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ComponentInterfaceError", "ComponentLoadError", "ConfigError", "ConfigIssue", "PluginError"]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config: where (slot), which key, and a sentence saying what was expected."""

    slot: str
    key: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.slot}.{self.key}" if self.key else self.slot
        return f"[{where}] {self.message}"


class ConfigError(ValueError):
    """A config (options of one component, or a whole pipeline) is invalid; lists every issue."""

    def __init__(self, issues: Iterable[ConfigIssue] | str, slot: str = "config") -> None:
        if isinstance(issues, str):
            issues = [ConfigIssue(slot, None, issues)]
        self.issues: list[ConfigIssue] = list(issues)
        lines = [str(i) for i in self.issues]
        head = "1 config error" if len(lines) == 1 else f"{len(lines)} config errors"
        super().__init__(head + ":\n  " + "\n  ".join(lines))

    @property
    def slots(self) -> list[str]:
        return sorted({i.slot for i in self.issues})


class ComponentLoadError(ImportError):
    """A component's target could not be imported or called; the original error is chained."""


class PluginError(RuntimeError):
    """A plugin could not be loaded or gave invalid specs."""


class ComponentInterfaceError(TypeError):
    """A built component lacks a member its kind's interface requires; names the component and the member."""
