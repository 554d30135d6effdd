"""Exceptions of registry_core; each names the thing at fault and what was expected."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "ComponentInterfaceError",
    "ComponentLoadError",
    "ConfigError",
    "ConfigIssue",
    "FileFormatError",
    "NotFoundError",
    "OutputPathError",
    "PluginError",
    "RegistryCoreError",
    "UsageError",
]


class RegistryCoreError(Exception):
    """Base of the errors registry_core and its plugins raise for bad input or state; each message is a sentence
    naming the file, item, slot or key at fault and what was expected. The CLI prints it as ``error: <message>``
    and exits with ``exit_code``."""

    exit_code: ClassVar[int] = 1


class UsageError(RegistryCoreError):
    """A command line that cannot be run as written (a missing or conflicting argument); the CLI exits 2."""

    exit_code: ClassVar[int] = 2


class NotFoundError(RegistryCoreError, LookupError):
    """A kind, component or other registered name that does not exist; the message suggests the nearest ones."""


class FileFormatError(RegistryCoreError, ValueError):
    """A file exists but does not hold what it should (a directory, not UTF-8, truncated, corrupt); names it."""


class OutputPathError(RegistryCoreError, OSError):
    """A place to write output is unusable (a file where a folder is needed, or it cannot be created); names it."""

    def __str__(self) -> str:  # OSError formats several arguments as a tuple; the message is the first
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config: where (slot), which key, and a sentence saying what was expected."""

    slot: str
    key: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.slot}.{self.key}" if self.key else self.slot
        return f"[{where}] {self.message}"


class ConfigError(RegistryCoreError, ValueError):
    """A config (options of one component, or a whole pipeline) is invalid; lists every issue."""

    def __init__(self, issues: Iterable[ConfigIssue] | str, slot: str = "config") -> None:
        if isinstance(issues, str):
            issues = [ConfigIssue(slot, None, issues)]
        self.issues: list[ConfigIssue] = list(issues)
        lines = [str(i) for i in self.issues]
        head = "1 config error" if len(lines) == 1 else f"{len(lines)} config errors"
        super().__init__(head + ":\n  " + "\n  ".join(lines))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[list[ConfigIssue]]]:
        # the issues, not the joined message, rebuild it: a copy (pickled to another rank) prints the same lines
        return type(self), (self.issues,)

    @property
    def slots(self) -> list[str]:
        return sorted({i.slot for i in self.issues})


class ComponentLoadError(RegistryCoreError, ImportError):
    """A component's target could not be imported or called; the original error is chained."""


class PluginError(RegistryCoreError, RuntimeError):
    """A plugin could not be loaded or gave invalid specs."""


class ComponentInterfaceError(RegistryCoreError, TypeError):
    """A built component lacks a member its kind's interface requires; names the component and the member."""
