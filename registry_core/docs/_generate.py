"""``python -m registry_core docs OUT``: the Markdown reference generated from specs, schemas and parsers.

By default only this repository's distributions are documented, and the REGISTRY_CORE_* variables are
ignored, so the output is the same on every machine whatever else is installed; ``--all-plugins``
documents what ``list`` sees instead.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from registry_core import atomic
from registry_core._kinds import CORE_DISTRIBUTION
from registry_core._registry import Registry
from registry_core.docs._markdown import HEADER
from registry_core.hookspecs import PROJECT

__all__ = ["BUNDLED_DISTRIBUTIONS", "add_docs_arguments", "bundled_registry", "cmd_docs", "reference_pages",
           "write_pages"]

#: The distributions this repository ships (the core and its two bundled plugins).
BUNDLED_DISTRIBUTIONS: Final = (CORE_DISTRIBUTION, "registry-llm", "registry-gfm")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def bundled_registry() -> Registry:
    """A registry of the bundled distributions' plugins only, ignoring the environment variables."""
    import importlib.metadata as md

    names = sorted(ep.name for ep in md.entry_points(group=PROJECT)
                   if ep.dist is not None and _normalized(ep.dist.metadata["Name"]) in BUNDLED_DISTRIBUTIONS)
    return Registry(autoload=False, plugins=names, use_env=False)


#: Builds the CLI's whole parser for a registry (``registry_core.cli.build_parser``, handed in: the CLI imports this module).
ParserFactory = Callable[[Registry], argparse.ArgumentParser]


def reference_pages(reg: Registry, build_parser: ParserFactory) -> dict[str, str]:
    """Relative path -> Markdown of every reference page for ``reg`` and the CLI ``build_parser`` makes."""
    from registry_core.docs._cli_page import cli_page
    from registry_core.docs._components import component_pages
    from registry_core.docs._config_page import configuration_page

    parser = build_parser(reg)
    pages = component_pages(reg)
    pages["cli.md"] = cli_page(parser, reg.commands())
    pages["configuration.md"] = configuration_page(reg, parser)
    return dict(sorted(pages.items()))


def _generated(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as fh:
            return fh.readline().rstrip("\n") == HEADER
    except (OSError, UnicodeDecodeError):
        return False


def write_pages(out: Path, pages: dict[str, str]) -> tuple[list[str], list[str]]:
    """Write ``pages`` under ``out`` (only those that changed) and remove generated pages no longer made.

    Returns (changed, removed) relative paths. Files without the generated header are never removed.
    """
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; expected a folder for the reference (or a path to create)")
    changed = []
    for rel, text in pages.items():
        target = out / rel
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(target, text)
        changed.append(rel)
    removed = []
    for path in sorted(out.rglob("*.md")):
        rel = path.relative_to(out).as_posix()
        if rel not in pages and _generated(path):
            atomic.remove_written(path)  # a page this generator wrote (its header says so)
            removed.append(rel)
    for folder in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            atomic.remove_output(folder, "reference")  # empty: nothing to lose
    return changed, removed


def cmd_docs(args: argparse.Namespace) -> int:
    """Write the reference of the bundled distributions (or, ``--all-plugins``, of every installed one) into OUT."""
    from registry_core.cli._main import build_parser

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"error: {out} is a file; expected a folder for the reference (or a path to create)", file=sys.stderr)
        return 1
    if args.all_plugins:
        from registry_core._registry import get_registry

        reg = get_registry()
    else:
        reg = bundled_registry()
    reg.verify_commands()  # a plugin whose command code cannot be imported is left out, as `plugins` reports it
    missing = [d for d in BUNDLED_DISTRIBUTIONS if d != CORE_DISTRIBUTION
               and not any(_normalized(p.distribution or "") == d for p in reg.plugins())]
    if missing and not args.all_plugins:
        print(f"warning: bundled distributions not installed, left out of the reference: {', '.join(missing)}",
              file=sys.stderr)
    pages = reference_pages(reg, build_parser)
    try:
        changed, removed = write_pages(out, pages)
    except OSError as exc:
        print(f"error: cannot write the reference into {out}: {exc}", file=sys.stderr)
        return 1
    print(f"{len(pages)} pages in {out}: {len(changed)} written, {len(removed)} removed")
    return 0


def add_docs_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``docs`` (a built-in command declared as a ``CommandSpec``, like a plugin's)."""
    parser.add_argument("out", metavar="OUT", help="folder to write into (docs/reference in this repository)")
    parser.add_argument("--all-plugins", action="store_true", help="document every installed plugin (as `list` "
                        "sees them), not only the bundled distributions")
