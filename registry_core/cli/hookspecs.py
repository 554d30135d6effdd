"""Hook specifications of the command line's ``run``: options a plugin adds to it and lines it prints after it.

registry-llm adds ``--sample PROMPT`` and prints the trained model's continuation. The registry adds these
specs by name (``HOOKSPEC_MODULES``), so a plugin implementing one is checked when it loads; standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registry_core.hookspecs import hookspec

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

    from registry_core.pipeline._run import RunResult

__all__ = ["registry_core_run_arguments", "registry_core_run_extras"]


@hookspec
def registry_core_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add options to ``run`` (called whenever the CLI builds its parser: import nothing heavy here).

    Option names must not clash with the core's (``--out``, ``--steps``, ``--resume``, ``--overwrite``, ``--set``).
    """
    raise NotImplementedError


@hookspec
def registry_core_run_extras(pipeline: Any, result: RunResult, args: argparse.Namespace) -> Mapping[str, Any] | None:
    """Extra results of a finished run on rank 0, e.g. ``{"sample": text}``; None or ``{}`` for none.

    ``pipeline`` is the trained, saved ``Pipeline``; ``args`` holds the options ``registry_core_run_arguments``
    added. ``run`` prints each as ``key: value`` after its own lines and adds it to its ``--json`` output.
    """
    raise NotImplementedError
