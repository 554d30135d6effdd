"""CLI command ``report``: an HTML report over run folders, with a summary table on the terminal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from registry_core.cli._render import print_json, print_table

__all__ = ["add_report_arguments", "cmd_report"]


def cmd_report(args: argparse.Namespace) -> int:
    from registry_core._registry import get_registry
    from registry_core.report._make import make_report
    from registry_core.report._tables import SUMMARY_HEADERS

    # a ReportError (bad input) goes to the CLI's boundary: one `error:` line, or the JSON error document
    result = make_report([Path(p) for p in args.runs], Path(args.out), get_registry(),
                         [Path(p) for p in args.artifact or []])
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print_json({"index": str(result.index), "figures": result.figures, "warnings": result.warnings,
                    "runs": [dict(zip(SUMMARY_HEADERS, row)) for row in result.rows]})
        return 0
    print_table(result.rows, SUMMARY_HEADERS, title="runs")
    print(f"wrote {result.index} ({result.figures} figures)")
    return 0


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``report`` (a built-in command declared as a ``CommandSpec``, like a plugin's)."""
    parser.description = ("Write OUT/index.html (PNG figures beside it; no network, no scripts) over run folders, "
                          "and print one summary row per run.")
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="folders written by `run --out` (or Pipeline.save)")
    parser.add_argument("--out", default="runs/report", help="report folder (default: runs/report); an earlier "
                        "report there is replaced")
    parser.add_argument("--artifact", action="append", metavar="PATH",
                        help="a file a run made (e.g. predict's land-cover map), drawn by the plugin that knows it "
                             "(repeatable)")
