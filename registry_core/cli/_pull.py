"""The ``pull`` command: a hub card's files into the cache (huggingface_hub's), so later runs work offline; for a
STAC card, the items a search finds (ids, times, asset links), so a run's data can be checked before it ingests."""

from __future__ import annotations

import argparse
from typing import Any

from registry_core._errors import UsageError
from registry_core._registry import get_registry
from registry_core._spec import ComponentSpec, StacCard
from registry_core.cli._render import print_json, print_table

__all__ = ["add_pull_arguments", "cmd_pull"]


def add_pull_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a card: a named pretrained model or dataset (python -m registry_core list "
                        "--tag pretrained / --tag dataset)")
    parser.add_argument("--revision", default=None,
                        help="branch, tag or commit to pull (default: the card's, usually main); a card's published "
                        "sha256 are checked only at its own revision")
    stac = parser.add_argument_group("STAC cards (a search, not a download: the ingest reads the pixels)")
    stac.add_argument("--bbox", nargs=4, type=float, metavar=("WEST", "SOUTH", "EAST", "NORTH"), default=None,
                      help="area to search, in lon/lat degrees (required for a STAC card)")
    stac.add_argument("--datetime", default=None, help="RFC 3339 instant or interval, e.g. 2024-06-01/2024-06-30")
    stac.add_argument("--max-items", type=int, default=20, help="list at most this many items (default 20)")
    stac.add_argument("--catalog", default=None, help="another URL of the same STAC API (a mirror)")


def _stac_record(spec: ComponentSpec, args: argparse.Namespace) -> dict[str, Any]:
    """What the STAC card's search finds now: built with the card's options and the area and dates given."""
    if args.bbox is None:
        raise UsageError(f"{spec.id} is a STAC collection; give the area to search with --bbox WEST SOUTH EAST NORTH "
                         "(and --datetime START/END)")
    if args.max_items < 1:
        raise UsageError(f"--max-items must be at least 1, got {args.max_items}")
    options: dict[str, Any] = {"bbox": list(args.bbox), "max_items": args.max_items}
    if args.datetime:
        options["datetime"] = args.datetime
    if args.catalog:
        options["catalog"] = args.catalog
    source = get_registry().build(spec.kind, spec.id, **options)
    resolve = getattr(source, "resolve", None)
    if not callable(resolve):
        raise UsageError(f"{spec.id}'s source ({type(source).__name__}) cannot resolve a search")
    record: dict[str, Any] = resolve()
    return record


def cmd_pull(args: argparse.Namespace) -> int:
    from registry_core.hub import find_cards, pull_card

    specs = find_cards(get_registry(), args.name)  # gpt2: the weights and the tokenizer, one repo
    records = []
    for spec in specs:
        if isinstance(spec.card, StacCard):
            found = _stac_record(spec, args)
            records.append({"card": spec.id, "kind": spec.kind, **found})
            if not args.json:
                print(f"searched {spec.kind} {spec.id}: {len(found['items'])} item(s) of {', '.join(found['collections'])} "
                      f"at {found['catalog']}")
                print_table([[it["id"], it["datetime"] or "-", it["updated"] or "-", ", ".join(it["assets"])]
                             for it in found["items"]], ["item", "datetime", "updated", "assets"])
            continue
        if args.bbox is not None or args.datetime is not None or args.catalog is not None:
            raise UsageError(f"{spec.id} is a hub card; --bbox, --datetime and --catalog apply to STAC cards only")
        pulled = pull_card(spec, revision=args.revision)
        records.append({"card": spec.id, "kind": spec.kind, **pulled.as_dict()})
        if not args.json:
            print(f"pulled {spec.kind} {spec.id}: {pulled.repo} at {pulled.revision} (commit {pulled.commit}) from "
                  f"{pulled.endpoint}")
            print_table([[f.name, f"{f.size:,}", f.sha256] for f in pulled.files], ["file", "bytes", "sha256"])
            print(f"cached in {pulled.folder}")
    if args.json:
        print_json(records)  # one record per card pulled (a STAC card's: the items found, with asset links)
    return 0
