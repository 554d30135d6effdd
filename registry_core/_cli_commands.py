"""Plugin CLI sub-commands: listed from their CommandSpecs, their code imported only when one is parsed.

A command whose code cannot be imported (or whose arguments function fails) ends with one line
``error: ...`` and exit code 1; the other commands are not affected.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from registry_core._builtin import load_command
from registry_core._errors import PluginError
from registry_core._registry import Registry
from registry_core._spec import CommandSpec

__all__ = ["CommandParser", "add_plugin_commands", "run_command"]


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(1)


class CommandParser(argparse.ArgumentParser):
    """A sub-command's parser; for a plugin command, its arguments are imported and added when it is parsed."""

    def __init__(self, *args: Any, command: CommandSpec | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = command

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self.add_pending_arguments()
        return super().parse_known_args(args, namespace)

    def add_pending_arguments(self) -> None:
        """Import a plugin command's arguments and add them now (parsing does it first; ``docs`` needs them all)."""
        if self._pending is None:
            return
        command, self._pending = self._pending, None
        try:
            add_arguments = load_command(command, "arguments")
        except PluginError as exc:
            _fail(str(exc))
        try:
            add_arguments(self)
        except Exception as exc:
            _fail(f"command {command.name!r} of plugin {command.plugin!r} failed to add its arguments "
                  f"({command.arguments}): {type(exc).__name__}: {exc}")


def run_command(command: CommandSpec, args: argparse.Namespace) -> int:
    """Import a plugin command's handler and run it; its return value is the exit code."""
    try:
        handler = load_command(command, "handler")
    except PluginError as exc:
        _fail(str(exc))
    return int(handler(args))


def add_plugin_commands(sub: Any, registry: Registry) -> None:
    """One sub-parser per plugin command (``sub`` made with ``parser_class=CommandParser``); imports nothing."""
    for command in registry.commands().values():
        p = sub.add_parser(command.name, help=f"{command.help} (plugin {command.plugin})", description=command.help,
                           command=command)
        p.set_defaults(func=functools.partial(run_command, command))
