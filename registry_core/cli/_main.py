"""The command line: a thin layer over the registry (``python -m registry_core --help``).

The core's commands are here and in ``_run``; plugins add more (``registry_core_commands``).
Exit codes: 0 ok, 1 not found, problems found or an error, 2 usage error, 130 interrupted; every error is
one ``error:`` line (or, with ``--json``, a JSON object on stdout), see ``_errors``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from registry_core._errors import NotFoundError, UsageError
from registry_core._kinds import CORE_COMMANDS
from registry_core._registry import Registry, get_registry
from registry_core._spec import ComponentSpec, StacCard
from registry_core._suggestions import close_matches
from registry_core.cli._commands import BUILTIN_COMMANDS, CommandParser, add_commands
from registry_core.cli._errors import (
    INTERRUPTED,
    CliParser,
    ErrorBoundary,
    add_global_flags,
    ignore_unawaited_coroutines,
)
from registry_core.cli._records import show_record as _show_record
from registry_core.cli._render import json_stdout, print_json, print_table
from registry_core.cli._run import add_pipeline_commands

__all__ = ["build_parser", "main"]


def _warn_broken(reg: Registry) -> None:
    for p in reg.plugins():
        if p.status == "broken":
            print(f"warning: plugin {p.name!r} is broken: {p.error} (details: python -m registry_core plugins)",
                  file=sys.stderr)
    for problem in reg.problems:
        print(f"warning: {problem}", file=sys.stderr)


def _mark(reg: Registry, spec: ComponentSpec) -> str:
    status = reg.status(spec)
    if status == "replaced":
        return f" [replaced by {reg.replaced_by(spec)}]"
    if status == "conflict":
        return " [conflict]"
    if spec.replaces:
        return f" [replaces {spec.replaces}]"
    return ""


def _unknown_modality(reg: Registry, modality: str) -> str | None:
    """A one-line error for a modality no plugin declares, or None when it is known."""
    known = reg.modalities()
    if modality in known:
        return None
    near = close_matches(modality, known)
    hint = f"did you mean {near[0]!r}?" if near else f"known modalities: {', '.join(known)}"
    return f"unknown modality {modality!r}; {hint}"


def cmd_list(args: argparse.Namespace) -> int:
    reg = get_registry()
    error = _unknown_modality(reg, args.modality) if args.modality is not None else None
    if error:
        raise UsageError(error)
    kind, pattern = args.kind, args.pattern
    if kind is None and pattern in reg.kinds():  # `list stac_loader`: a kind's name lists that kind
        kind, pattern = pattern, None
    if pattern and not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"  # a bare word matches anywhere in the name
    specs = reg.list(kind=kind, pattern=pattern, modality=args.modality, tags=args.tag or ())
    _warn_broken(reg)
    if args.json:
        print_json([reg.describe(s) for s in specs])
        return 0
    if not specs:
        print("no components match" if (args.pattern or args.kind or args.modality or args.tag) else
              "no components registered (is a plugin installed? see: python -m registry_core plugins)")
        return 0
    kinds: dict[str, list[ComponentSpec]] = {}
    for s in specs:
        kinds.setdefault(s.kind, []).append(s)
    for i, (kind, group) in enumerate(kinds.items()):
        if i:
            print()
        rows = [[s.id, s.modality, f"{s.distribution or s.plugin} {s.version or ''}".strip(), s.summary + _mark(reg, s)]
                for s in group]
        headers = ["id", "modality", "provider", "summary"]
        if any(s.card is not None for s in group):  # cards: the hub repo (or STAC API and collection) each names
            rows = [[*row[:1], s.card.where if s.card is not None else "", *row[1:]] for row, s in zip(rows, group)]
            headers.insert(1, "source")
        print_table(rows, headers, title=kind)
    return 0


def _print_stac_card(spec: ComponentSpec, card: StacCard) -> None:
    """A STAC card's lines of ``show``: the API and collection, what its items hold, what reading them needs."""
    print(f"  card:        collection {card.collection} of the STAC API {card.catalog}")
    facts = {"licence": card.licence, "source": card.source, "citation": card.citation,
             "signing": {"planetary-computer": "asset links signed by planetary-computer (registry-gfm[planetary-"
                         "computer])"}.get(card.signing or ""),
             "credentials": {"earthdata": "NASA Earthdata login: EARTHDATA_TOKEN or a ~/.netrc entry for "
                             "urs.earthdata.nasa.gov", "aws-requester-pays": "AWS credentials (the bucket is "
                             "requester-pays: reads are billed to you)"}.get(card.credentials or "")}
    for key, value in [*facts.items(), *card.about.items()]:
        if value is not None:
            print(f"    {key + ':':15} {value}")
    print(f"    pull:           python -m registry_core pull {spec.name} --bbox W S E N --datetime START/END")


def _print_card(spec: ComponentSpec) -> None:
    """The card's lines of ``show``: where the model lives and what it needs, read from the spec alone."""
    card = spec.card
    assert card is not None
    if isinstance(card, StacCard):
        _print_stac_card(spec, card)
        return
    print(f"  card:        {card.repo} ({card.repo_type} repo) at {card.revision}"
          + ("  [gated: needs HF_TOKEN]" if card.gated else ""))
    for name in card.files:
        digest = card.sha256.get(name)
        print(f"    file:           {name}" + (f"  sha256 {digest}" if digest else ""))
    facts = [f"licence {card.licence}" if card.licence else None,
             f"{card.params:,} parameters" if card.params else None]
    shown = ", ".join(f for f in facts if f)
    if shown:
        print(f"    about:          {shown}")
    if card.source:
        print(f"    source:         {card.source}")
    for key, value in card.preprocessing.items():
        print(f"    {key + ':':15} {value}")
    print(f"    pull:           python -m registry_core pull {spec.name}")


def cmd_show(args: argparse.Namespace) -> int:
    reg = get_registry()
    spec = reg.get(args.kind, args.name)
    rec = _show_record(reg, spec)
    if args.json:
        print_json(rec)
        return 0
    print(f"{spec.kind} {spec.id}  ({spec.distribution or spec.plugin} {spec.version or ''})".rstrip())
    print(f"  {spec.summary}")
    print(f"  target:      {spec.target}")
    print(f"  modality:    {spec.modality}" + (f"   tags: {', '.join(spec.tags)}" if spec.tags else ""))
    if spec.replaces:
        print(f"  replaces:    {spec.replaces}")
    if spec.exporter:
        print(f"  exports:     python -m registry_core export RUN_DIR --to {spec.name} OUT")
    if rec["replaced_by"]:
        print(f"  replaced by: {rec['replaced_by']}")
    if rec["status"] == "conflict":
        print("  status:      conflict (another plugin provides the same short name)")
    if spec.card is not None:
        _print_card(spec)
    for port in ("provides", "requires"):
        ports = rec[port]
        if ports:
            shown = ", ".join(f"{k}={'<from config>' if v is None else v}" for k, v in ports.items())
            print(f"  {port + ':':12} {shown}")
    if not rec["options"]:
        print("  options:     (none)")
        return 0
    print(f"  options ({rec['config']}):")
    rows = []
    for o in rec["options"]:
        default = "(required)" if o["required"] else repr(o["default"])
        extra = []
        if o["min"] is not None:
            extra.append(f">= {o['min']}")
        if o["max"] is not None:
            extra.append(f"<= {o['max']}")
        if o["choices"]:
            extra.append("one of " + ", ".join(map(repr, o["choices"])))
        if o["wired"]:
            extra.append(f"wired from {o['wired']}")
        help_text = o["help"] + (f" [{'; '.join(extra)}]" if extra else "")
        rows.append([o["name"], o["type"], default, help_text])
    print_table(rows, ["name", "type", "default", "description"])
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    reg = get_registry()
    reg.verify_commands()
    infos = reg.plugins()
    if args.json:
        print_json([p.as_dict() for p in infos])
        return 0
    if not infos:
        print("no plugins found in entry-point group 'registry_core'")
    rows = [[p.name, p.distribution or "-", p.version or "-", p.status, str(p.components), p.error or ""]
            for p in infos]
    if rows:
        print_table(rows, ["plugin", "distribution", "version", "status", "components", "error"])
    for problem in reg.problems:  # e.g. a REGISTRY_CORE_BLOCK name that blocks nothing
        print(f"problem: {problem}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    reg = get_registry()
    reg.verify_commands()
    found = 0
    report: dict[str, Any] = {"broken": [], "conflicts": [], "shadowed": [], "problems": list(reg.problems),
                              "import_seconds": {}}
    for p in reg.plugins():
        report["import_seconds"][p.name] = round(p.import_seconds, 4)
        if p.status == "broken":
            report["broken"].append({"plugin": p.name, "error": p.error, "traceback": p.traceback})
    for (kind, name), specs in reg.conflicts().items():
        report["conflicts"].append({"kind": kind, "name": name, "providers": [s.id for s in specs]})
    for spec, by in reg.shadowed():
        report["shadowed"].append({"kind": spec.kind, "id": spec.id, "replaced_by": by})
    found = len(report["broken"]) + len(report["conflicts"]) + len(report["problems"])
    if args.json:
        print_json(report)
        return 1 if found else 0
    for b in report["broken"]:
        print(f"broken plugin {b['plugin']!r}: {b['error']}\n{b['traceback']}")
    for c in report["conflicts"]:
        print(f"conflict: {c['kind']} {c['name']!r} is provided by {' and '.join(c['providers'])}")
    for s in report["shadowed"]:
        print(f"shadowed: {s['kind']} {s['id']} is replaced by {s['replaced_by']}")
    for p in report["problems"]:
        print(f"problem: {p}")
    print("plugin import times:")
    for name, secs in sorted(report["import_seconds"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:20} {secs * 1000:8.1f} ms")
    print("no problems found" if not found else f"{found} problem(s) found")
    return 1 if found else 0


def build_parser(registry: Registry | None = None) -> argparse.ArgumentParser:
    """The parser of the core's commands and of every command the registry's plugins add."""
    reg = registry or get_registry()
    parser = CliParser(
        prog="python -m registry_core", description="Browse registered components; check and run pipelines."
    )
    add_global_flags(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)

    p = sub.add_parser("list", help="list components, grouped by kind")
    p.add_argument("pattern", nargs="?", help="a kind's name (list that kind), or an fnmatch pattern on name or "
                   "plugin:name (a bare word matches anywhere)")
    p.add_argument("--kind", help="only this kind")
    p.add_argument("--modality", help=f"only this modality: {', '.join(reg.modalities())} (components for 'any' "
                   "are included)")
    p.add_argument("--tag", action="append", help="only components with this tag (repeatable)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="show one component's whole spec")
    p.add_argument("kind")
    p.add_argument("name", help="short name or plugin:name")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("plugins", help="list plugins with their status")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("doctor", help="report broken plugins, conflicts, shadowed names and import times")
    p.set_defaults(func=cmd_doctor)

    add_pipeline_commands(sub, reg)
    add_commands(sub, BUILTIN_COMMANDS, reg)
    add_commands(sub, reg.commands().values(), reg)
    return parser


def _unknown_command(reg: Registry, word: str) -> UsageError | NotFoundError:
    """A command nobody provides: a usage error (2), or not found (1) when a broken plugin might have provided it."""
    near = close_matches(word, [*CORE_COMMANDS, *reg.commands()])
    hint = f"; did you mean {near[0]!r}?" if near else "; see python -m registry_core --help"
    broken = [p.name for p in reg.plugins() if p.status == "broken"]
    if broken:
        hint += f" (broken plugins, whose commands are unavailable: {', '.join(broken)}; see python -m registry_core plugins)"
    message = f"unknown command {word!r}{hint}"
    return NotFoundError(message) if broken else UsageError(message)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """A Python warning as the CLI prints every note: one ``warning: ...`` line on stderr, in one write (so lines
    of several ranks never run together)."""
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and run one command; every error it raises is reported by the one boundary (``registry_core.cli._errors``)."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # not Python's file, line and source: one line per warning
        code = _main(list(sys.argv[1:] if argv is None else argv))
    if code == INTERRUPTED:
        ignore_unawaited_coroutines()  # again outside catch_warnings: for those collected at exit
    return code


def _main(words: list[str]) -> int:
    boundary = ErrorBoundary.for_words(words)
    with json_stdout(boundary.json):  # --json: stdout holds the JSON document alone, whatever else prints
        return _run_command(words, boundary)


def _run_command(words: list[str], boundary: ErrorBoundary) -> int:
    try:
        reg = get_registry()
        command = next((w for w in words if not w.startswith("-")), None)
        if command is not None and command not in (*CORE_COMMANDS, *reg.commands()):
            raise _unknown_command(reg, command)
        args = build_parser(reg).parse_args(words)
        boundary.parsed(args)
        return int(args.func(args))
    except BaseException as exc:  # the boundary: one line (or JSON) and an exit code for everything
        return boundary.report(exc)
