"""Plugin CLI sub-commands: listed from their CommandSpecs, their code imported only when one is parsed.

A command whose code cannot be imported (or whose arguments function fails) raises ``PluginError``,
which the CLI's boundary prints as one line ``error: ...`` with exit code 1; the other commands are not
affected. Every command gets the global ``--json`` and ``--debug`` flags.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence
from typing import Any

from registry_core._builtin import load_command
from registry_core._errors import PluginError
from registry_core._registry import Registry
from registry_core._spec import CommandSpec
from registry_core.cli._errors import CliParser, add_global_flags

__all__ = ["CommandParser", "add_plugin_commands", "run_command"]


class CommandParser(CliParser):
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
        """Import a plugin command's arguments and add them, then the global flags (parsing does it; ``docs`` too)."""
        if self._pending is not None:
            command, self._pending = self._pending, None
            add_arguments = load_command(command, "arguments")
            try:
                add_arguments(self)
            except Exception as exc:
                raise PluginError(f"command {command.name!r} of plugin {command.plugin!r} failed to add its "
                                  f"arguments ({command.arguments}): {type(exc).__name__}: {exc}") from exc
        add_global_flags(self)  # after the plugin's own, so a plugin may define --json itself


def run_command(command: CommandSpec, args: argparse.Namespace) -> int:
    """Import a plugin command's handler and run it; its return value is the exit code."""
    return int(load_command(command, "handler")(args))


def add_plugin_commands(sub: Any, registry: Registry) -> None:
    """One sub-parser per plugin command (``sub`` made with ``parser_class=CommandParser``); imports nothing."""
    for command in registry.commands().values():
        p = sub.add_parser(command.name, help=f"{command.help} (plugin {command.plugin})", description=command.help,
                           command=command)
        p.set_defaults(func=functools.partial(run_command, command))
