"""CLI command ``report``: an HTML report over run folders, with a summary table on the terminal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from registry_core.cli._render import print_json, print_table

__all__ = ["add_report_command"]


def cmd_report(args: argparse.Namespace) -> int:
    from registry_core._registry import get_registry
    from registry_core.report._make import ReportError, make_report
    from registry_core.report._tables import SUMMARY_HEADERS

    try:
        result = make_report([Path(p) for p in args.runs], Path(args.out), get_registry(),
                             [Path(p) for p in args.artifact or []])
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print_json({"index": str(result.index), "figures": result.figures, "warnings": result.warnings,
                    "runs": [dict(zip(SUMMARY_HEADERS, row)) for row in result.rows]})
        return 0
    print_table(result.rows, SUMMARY_HEADERS, title="runs")
    print(f"wrote {result.index} ({result.figures} figures)")
    return 0


def add_report_command(sub: Any) -> None:
    p = sub.add_parser("report", help="an HTML report of finished runs: curves, plugin figures, registry, locks",
                       description="Write OUT/index.html (PNG figures beside it; no network, no scripts) over run "
                                   "folders, and print one summary row per run.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="folders written by `run --out` (or Pipeline.save)")
    p.add_argument("--out", default="runs/report", help="report folder (default: runs/report); an earlier report "
                   "there is replaced")
    p.add_argument("--artifact", action="append", metavar="PATH",
                   help="a file a run made (e.g. predict's land-cover map), drawn by the plugin that knows it "
                        "(repeatable)")
    p.add_argument("--json", action="store_true", help="print the summary rows and the page's path as JSON")
    p.set_defaults(func=cmd_report)
