"""The CLI's one error boundary: whatever a command raises ends as ``error: <message>`` and an exit code.

Errors of the ``RegistryCoreError`` hierarchy and ``OSError`` (a file the user named) are the user's to fix:
their message is printed as is. Anything else is printed with its type and a hint to rerun with ``--debug``
(or ``REGISTRY_CORE_DEBUG=1``), which prints the traceback first. With ``--json`` the error is one JSON
object on stdout instead (stdout always holds exactly one JSON document then; stderr only log lines).
Exit codes: 1 for errors, 2 for usage errors, 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

from registry_core._errors import ConfigError, RegistryCoreError, UsageError
from registry_core.cli._render import print_json

__all__ = ["DEBUG_ENV", "CliParser", "ErrorBoundary", "add_global_flags", "ignore_unawaited_coroutines"]

#: Set to 1 (or any value but "", "0", "false", "no") to print the traceback of every error.
DEBUG_ENV: Final = "REGISTRY_CORE_DEBUG"
_HINT: Final = f"run with --debug or {DEBUG_ENV}=1 for the traceback"
INTERRUPTED: Final = 130


class CliParser(argparse.ArgumentParser):
    """An argument parser whose usage errors raise ``UsageError`` (one line, exit 2) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def add_global_flags(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """``--json`` and ``--debug``, on the top parser (defaults False) and each command's (kept when not given)."""
    default: Any = False if top else argparse.SUPPRESS
    known = parser._option_string_actions
    if "--json" not in known:
        parser.add_argument("--json", action="store_true", default=default,
                            help="machine-readable output: the result, or the error, as one JSON document on stdout")
    if "--debug" not in known:
        parser.add_argument("--debug", action="store_true", default=default,
                            help=f"print the traceback of an error (also: {DEBUG_ENV}=1)")


def ignore_unawaited_coroutines() -> None:
    """Ctrl-C mid-write leaves the coroutines of an async store (zarr) unawaited, and Python reports each one when
    it collects it (in the command or at exit); the store's IO loop, stopped by its exit hook with tasks still
    running, has asyncio log each task it destroys (with a traceback when one failed on the shut-down executor).
    After `error: interrupted`, nothing more is said of them: the store is marked incomplete and resumes."""
    warnings.filterwarnings("ignore", message=r"coroutine .* was never awaited", category=RuntimeWarning)
    logging.getLogger("asyncio").disabled = True


def _env_debug() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _config_lines(exc: ConfigError, file: str | None) -> list[str]:
    """One line per issue, prefixed with the pipeline file unless the issue is about a file its message names."""
    lines = []
    for issue in exc.issues:
        if issue.key is None and (issue.slot in issue.message or (file and Path(issue.slot) == Path(file))):
            lines.append(_one_line(issue.message))  # the slot is the file, and the message says so
        else:
            lines.append(f"{file}: {_one_line(issue)}" if file else _one_line(issue))
    return lines or [_one_line(exc)]


def _os_message(exc: OSError) -> str:
    """An OS error as 'PATH: reason' (Python's own form repeats errno), or our message when we raised it."""
    if exc.filename is not None and exc.strerror:
        where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
        return f"{where}: {exc.strerror}"
    return _one_line(exc) or type(exc).__name__


@dataclass
class ErrorBoundary:
    """How the command being run reports an error: as JSON or text, with or without the traceback."""

    json: bool = False
    debug: bool = False
    file: str | None = None

    @classmethod
    def for_words(cls, words: Sequence[str]) -> ErrorBoundary:
        """Before parsing (a usage error is reported too): the flags as the words give them."""
        return cls(json="--json" in words, debug="--debug" in words or _env_debug())

    def parsed(self, args: argparse.Namespace) -> None:
        """After parsing: the flags as argparse read them, and the pipeline file errors are about."""
        self.json = bool(getattr(args, "json", self.json))
        self.debug = bool(getattr(args, "debug", False)) or self.debug
        file = getattr(args, "file", None)
        self.file = str(file) if file is not None else None

    def lines(self, exc: BaseException) -> list[str]:
        """The message(s) of an error, one line each (several only for a ConfigError with several issues)."""
        if isinstance(exc, ConfigError):
            return _config_lines(exc, self.file)
        if isinstance(exc, RegistryCoreError):
            return [_one_line(exc) or type(exc).__name__]
        if isinstance(exc, OSError):
            return [_os_message(exc)]
        if isinstance(exc, KeyboardInterrupt):
            return ["interrupted"]
        message = _one_line(exc)
        if not (isinstance(exc, ValueError) and message):  # our ValueErrors are worded for users; others are bugs
            message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        return [f"{message} ({_HINT})"]

    def record(self, exc: BaseException, code: int) -> dict[str, Any]:
        """The JSON form: ``error`` (one line), ``slot`` and ``key`` (of the first issue), every issue in ``errors``."""
        lines = self.lines(exc)
        if isinstance(exc, ConfigError) and exc.issues:
            issues = [{"slot": i.slot, "key": i.key, "message": _one_line(i.message)} for i in exc.issues]
        else:
            issues = [{"slot": getattr(exc, "slot", None), "key": getattr(exc, "key", None), "message": lines[0]}]
        error = lines[0] if len(lines) == 1 else f"{len(lines)} errors: " + "; ".join(lines)
        return {"ok": False, "error": error, "type": type(exc).__name__, "slot": issues[0]["slot"],
                "key": issues[0]["key"], "file": self.file, "exit_code": code, "errors": issues}

    def report(self, exc: BaseException) -> int:
        """Print ``exc`` as this command's error and return the exit code."""
        if isinstance(exc, SystemExit):  # --help, or a handler that chose its own exit
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc, BrokenPipeError):  # `... | head` closed stdout: not an error
            return 0
        if isinstance(exc, KeyboardInterrupt):
            code = INTERRUPTED
            ignore_unawaited_coroutines()
        else:
            code = exc.exit_code if isinstance(exc, RegistryCoreError) else 1
        if self.debug:
            traceback.print_exception(exc, file=sys.stderr)
        if self.json:
            print_json(self.record(exc, code))
        else:
            for line in self.lines(exc):
                # One write per line, newline included: print() writes the text and its newline apart, and two
                # ranks failing at once then interleave into "error: a error: b" on one line.
                sys.stderr.write(f"error: {line}\n")
                sys.stderr.flush()
        sys.stdout.flush()
        return code
