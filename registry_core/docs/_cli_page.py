"""The CLI reference page, built from the argparse parsers' actions (not argparse's help text).

argparse's help depends on the terminal width and the Python version (group titles, metavar layout);
reading the actions gives the same page everywhere.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, Final

from registry_core._spec import CommandSpec
from registry_core.cli._commands import CommandParser
from registry_core.docs._markdown import code, page, table

__all__ = ["cli_page"]

#: Usage lines are wrapped at this width, whatever the terminal.
_WIDTH: Final = 100


def _subcommands(parser: argparse.ArgumentParser) -> tuple[dict[str, argparse.ArgumentParser], dict[str, str]]:
    """The sub-parsers by name, and each one's one-line help, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return dict(action.choices), helps
    return {}, {}


def _metavar(action: argparse.Action) -> str:
    if action.metavar is not None:
        return str(action.metavar)
    if action.choices is not None:
        return "{" + ",".join(map(str, action.choices)) + "}"
    return action.dest.upper() if action.option_strings else action.dest


def _form(action: argparse.Action) -> str:
    """How the argument is written: ``FILE``, ``--out OUT``, ``--resume``, ``[PATTERN]``."""
    mv = _metavar(action)
    nargs = action.nargs
    if nargs == 0:
        value = ""
    elif nargs == "?":
        value = f"[{mv}]"
    elif nargs == "*":
        value = f"[{mv} ...]"
    elif nargs == "+":
        value = f"{mv} [{mv} ...]"
    elif isinstance(nargs, int):
        value = " ".join([mv] * nargs)
    else:
        value = mv
    if not action.option_strings:
        return value
    return " ".join([", ".join(action.option_strings), value]).strip() if value else ", ".join(action.option_strings)


def _usage_part(action: argparse.Action) -> str:
    if not action.option_strings:
        return _form(action)
    mv = _metavar(action)
    word = action.option_strings[-1] + ("" if action.nargs == 0 else f" {mv}")
    return word if action.required else f"[{word}]"


def _expand(action: argparse.Action, prog: str) -> str:
    """The help text with argparse's ``%(default)s``-style fields filled in, as argparse does."""
    text = action.help or ""
    if "%" not in text:
        return text
    params: dict[str, Any] = dict(vars(action), prog=prog)
    for name, value in list(params.items()):
        if hasattr(value, "__name__"):
            params[name] = value.__name__
    if params.get("choices") is not None:
        params["choices"] = ", ".join(map(str, params["choices"]))
    return text % params


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if action.nargs == 0:  # a flag
        return "off" if action.default in (False, None) else "on"
    if action.default is None or action.default is argparse.SUPPRESS:
        return "-"
    return code(str(action.default))


def _wrap(words: list[str], indent: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in words:
        if current and len(current) + 1 + len(word) > _WIDTH:
            lines.append(current)
            current = indent + word
        else:
            current = f"{current} {word}" if current else word
    return [*lines, current]


def _arguments(action: argparse.Action) -> bool:
    return "--help" not in action.option_strings


def _command_section(name: str, parser: argparse.ArgumentParser, help_text: str, by: str) -> list[str]:
    if isinstance(parser, CommandParser):
        parser.add_pending_arguments()
    actions = [a for a in parser._actions if _arguments(a)]
    usage = _wrap([parser.prog, *(_usage_part(a) for a in actions)], " " * (len(parser.prog) + 1))
    lines = [f"## {name}", "", f"{help_text[:1].upper()}{help_text[1:]} ({by}).", ""]
    if parser.description and parser.description.strip() != help_text:
        lines += [parser.description.strip(), ""]
    lines += ["```text", *usage, "```", ""]
    for group in parser._action_groups:
        rows = [[code(_form(a)), _default(a), _expand(a, parser.prog)
                 + (" (repeatable)" if isinstance(a, argparse._AppendAction) and "repeatable" not in (a.help or "") else "")]
                for a in group._group_actions if _arguments(a)]
        if not rows:
            continue
        title = ("Arguments" if group is parser._positionals else "Options" if group is parser._optionals
                 else (group.title or "")[:1].upper() + (group.title or "")[1:])
        lines += [f"**{title}**", "", *table(["argument", "default", "description"], rows), ""]
    return lines


def cli_page(parser: argparse.ArgumentParser, commands: Mapping[str, CommandSpec]) -> str:
    """The reference of ``parser`` (``build_parser``'s) and its sub-commands; ``commands``: the plugins' ones."""
    parsers, helps = _subcommands(parser)

    def by(name: str) -> str:
        return f"plugin `{commands[name].plugin}`" if name in commands else "core"

    # a plugin command's help ends in "(plugin NAME)"; the page says who provides it in its own words
    clean = {n: helps.get(n, "").removesuffix(f" ({by(n).replace('`', '')})") for n in parsers}
    lines = ["# CLI reference", "", f"`{parser.prog}`: {parser.description}", "",
             "Every command takes `-h` / `--help`. Exit codes: 0 ok, 1 not found or problems found, 2 usage error.",
             "", *table(["command", "from", "what it does"], [[f"[{code(n)}](#{n})", by(n), clean[n]] for n in parsers]),
             ""]
    for name, sub in parsers.items():
        lines += _command_section(name, sub, clean[name], by(name))
    return page(lines)
