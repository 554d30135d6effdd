"""Sub-commands declared as CommandSpecs (every plugin's, and the core's export, report and docs): listed
from their specs, their code imported only when one is parsed.

A command whose code cannot be imported (or whose arguments function fails) raises ``PluginError``,
which the CLI's boundary prints as one line ``error: ...`` with exit code 1; the other commands are not
affected. Every command gets the global ``--json`` and ``--debug`` flags.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Iterable, Sequence
from typing import Any, Final

from registry_core._errors import PluginError
from registry_core._registry import Registry
from registry_core._spec import CommandSpec
from registry_core._targets import load_command
from registry_core.cli._errors import CliParser, add_global_flags

__all__ = ["BUILTIN_COMMANDS", "CommandParser", "add_commands", "run_command"]

#: The core's commands that take the plugins' route: declared statically, imported only when run.
BUILTIN_COMMANDS: Final = (
    CommandSpec("export", "write a trained run in another format a plugin offers (e.g. hf-gpt2)",
                arguments="registry_core.cli._export:add_export_arguments",
                handler="registry_core.cli._export:cmd_export"),
    CommandSpec("report", "an HTML report of finished runs: curves, plugin figures, registry, locks",
                arguments="registry_core.cli._report:add_report_arguments",
                handler="registry_core.cli._report:cmd_report"),
    CommandSpec("pull", "fetch a card's files (a named pretrained model) from its hub into the cache",
                arguments="registry_core.cli._pull:add_pull_arguments", handler="registry_core.cli._pull:cmd_pull"),
    CommandSpec("serve", "an HTTP server over a run or card: the OpenAI API for text, /v1/predict for imagery",
                arguments="registry_core.cli._serve:add_serve_arguments", handler="registry_core.cli._serve:cmd_serve"),
    CommandSpec("docs", "write the Markdown reference of components, CLI and configuration",
                arguments="registry_core.docs:add_docs_arguments", handler="registry_core.docs:cmd_docs"),
)


class CommandParser(CliParser):
    """A sub-command's parser; for a plugin command, its arguments are imported and added when it is parsed."""

    def __init__(self, *args: Any, command: CommandSpec | None = None, registry: Registry | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = command
        #: The registry whose parser this is (an arguments function may read it, as ``export`` lists its formats).
        self.registry = registry

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
    """Import a command's handler and run it; its return value is the exit code."""
    return int(load_command(command, "handler")(args))


def add_commands(sub: Any, commands: Iterable[CommandSpec], registry: Registry) -> None:
    """One sub-parser per command (``sub`` made with ``parser_class=CommandParser``); imports nothing."""
    for command in commands:
        by = f" (plugin {command.plugin})" if command.plugin else ""
        p = sub.add_parser(command.name, help=command.help + by, description=command.help, command=command,
                           registry=registry)
        p.set_defaults(func=functools.partial(run_command, command))
