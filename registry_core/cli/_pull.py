"""The ``pull`` command: a card's hub files into the cache (huggingface_hub's), so later runs work offline."""

from __future__ import annotations

import argparse

from registry_core._registry import get_registry
from registry_core.cli._render import print_json, print_table

__all__ = ["add_pull_arguments", "cmd_pull"]


def add_pull_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a card: a named pretrained model (python -m registry_core list --tag pretrained)")
    parser.add_argument("--revision", default=None,
                        help="branch, tag or commit to pull (default: the card's, usually main); a card's published "
                        "sha256 are checked only at its own revision")


def cmd_pull(args: argparse.Namespace) -> int:
    from registry_core.hub import find_cards, pull_card

    specs = find_cards(get_registry(), args.name)  # gpt2: the weights and the tokenizer, one repo
    records = []
    for spec in specs:
        pulled = pull_card(spec, revision=args.revision)
        records.append({"card": spec.id, "kind": spec.kind, **pulled.as_dict()})
        if not args.json:
            print(f"pulled {spec.kind} {spec.id}: {pulled.repo} at {pulled.revision} (commit {pulled.commit}) from "
                  f"{pulled.endpoint}")
            print_table([[f.name, f"{f.size:,}", f.sha256] for f in pulled.files], ["file", "bytes", "sha256"])
            print(f"cached in {pulled.folder}")
    if args.json:
        print_json(records)  # one record per card pulled
    return 0
