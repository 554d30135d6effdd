"""Reference pages of the components: one per component, one per kind, the ports, and the overall index.

Everything comes from the registry's specs, config schemas and declarations (the record ``show --json``
prints); nothing here names a component.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from registry_core._kinds import CORE_COMMANDS, CORE_DISTRIBUTION
from registry_core._registry import Registry
from registry_core._spec import ComponentSpec, StacCard
from registry_core.cli._records import show_record
from registry_core.docs._markdown import code, literal, options_table, page, table
from registry_core.pipeline._compose import LIST_SLOTS, SLOTS
from registry_core.pipeline._toml import dumps

__all__ = ["component_pages", "component_paths"]

def component_paths(specs: Sequence[ComponentSpec]) -> dict[ComponentSpec, str]:
    """``components/<kind>/<name>.md``; ``<name>.<plugin>.md`` when plugins share a short name in a kind."""
    counts: dict[tuple[str, str], int] = {}
    for s in specs:
        counts[(s.kind, s.name)] = counts.get((s.kind, s.name), 0) + 1

    def shared(s: ComponentSpec) -> bool:  # "index" would overwrite the kind's own page
        return counts[(s.kind, s.name)] > 1 or s.name == "index"

    return {s: f"components/{s.kind}/{s.name}" + (f".{s.plugin}" if shared(s) else "") + ".md" for s in specs}


def _provider(spec: ComponentSpec | Mapping[str, Any]) -> str:
    plugin, dist = (spec.plugin, spec.distribution) if isinstance(spec, ComponentSpec) else (spec["plugin"], spec["distribution"])
    return f"{dist} (plugin {code(str(plugin))})" if dist else f"plugin {code(str(plugin))}"


def _use_snippet(spec: ComponentSpec) -> list[str]:
    """How a pipeline file names this component, when its kind fills a slot."""
    for slot, kind in SLOTS.items():
        if kind == spec.kind:
            return ["```toml", f"[{slot}]", f"use = \"{spec.name}\"", "```"]
    for slot, kind in LIST_SLOTS.items():
        if kind == spec.kind:
            return ["```toml", f"[[{slot}]]", f"use = \"{spec.name}\"", "```"]
    return []


def _port_value(value: Any, name: str, options: set[str], provides: bool) -> str:
    """A port's value on a component page; None stands for the config field of the port's name."""
    if value is not None:
        return code(literal(value))
    if provides:
        return f"its option {code(name)}" if name in options else f"computed from its config ({code(name)})"
    return f"wired into its option {code(name)}" if name in options else "any value"


def _ports(title: str, ports: Mapping[str, Any], options: set[str], declared: Collection[str]) -> list[str]:
    rows = [[f"[{name}](../../ports.md#{name})" if name in declared else code(name),
             _port_value(value, name, options, title == "Provides")] for name, value in ports.items()]
    return [f"**{title}**", "", *table(["port", "value"], rows), ""] if rows else []


def _stac_card_section(spec: ComponentSpec, card: StacCard) -> list[str]:
    """A STAC card's page part: the API and collection, what the items hold, what reading them needs."""
    rows = [["STAC API", code(card.catalog)], ["collection", code(card.collection)],
            ["licence", card.licence or "-"], ["source", card.source or "-"], ["citation", card.citation or "-"],
            ["asset signing", code(card.signing) if card.signing else "no"],
            ["credentials", code(card.credentials) if card.credentials else "none"]]
    rows += [[key, literal(value)] for key, value in card.about.items()]
    return ["## Card", "", f"A named STAC collection: the {code(spec.target.rpartition(':')[0])} source preset to it; "
            "a pipeline adds the area (`bbox`) and dates (`datetime`). "
            f"`python -m registry_core pull {spec.name} --bbox W S E N --datetime START/END` lists the items a "
            "search finds, with their asset links.", "", *table(["", ""], rows), ""]


def _card_section(spec: ComponentSpec) -> list[str]:
    """A card's page part: where the model lives, what it is, what it needs, and the command that pulls it."""
    card = spec.card
    assert card is not None
    if isinstance(card, StacCard):
        return _stac_card_section(spec, card)
    rows = [["hub repo", f"[{code(card.repo)}]({card.source})" if card.source else code(card.repo)],
            ["revision", code(card.revision)],
            ["files", ", ".join(code(f) + (f" (sha256 {code(card.sha256[f])})" if f in card.sha256 else "")
                                for f in card.files)],
            ["licence", card.licence or "-"], ["parameters", f"{card.params:,}" if card.params else "-"],
            ["gated", "yes: set HF_TOKEN" if card.gated else "no"]]
    rows += [[key, literal(value)] for key, value in card.preprocessing.items()]
    return ["## Card", "", f"A named pretrained model: the {code(spec.target.rpartition(':')[0])} loader preset to "
            f"these files. Pull it with `python -m registry_core pull {spec.name}`.", "", *table(["", ""], rows), ""]


def _card_rows(group: list[ComponentSpec], paths: Mapping[ComponentSpec, str], size: str) -> list[list[str]]:
    out = []
    for s in group:
        card = s.card
        assert card is not None
        if isinstance(card, StacCard):
            about = f"collection {code(card.collection)}"
            where = code(card.catalog)
        else:
            about = f"{card.params:,}" if size == "params" and card.params else "-"
            if size == "files":
                about = ", ".join(code(f) for f in card.files)
            where = code(card.repo)
        out.append([f"[{code(s.name)}]({paths[s]})", s.kind, where, card.licence or "-", about, s.summary])
    return out


def datasets_table(specs: Sequence[ComponentSpec], paths: Mapping[ComponentSpec, str]) -> list[str]:
    """The table of every dataset card (hub corpora and STAC collections): the cards page's and the README's."""
    datasets = [s for s in specs if s.card is not None and s.card.category == "dataset"]
    return table(["card", "kind", "source", "licence", "files / collection", "summary"],
                 _card_rows(datasets, paths, "files")) or ["No dataset cards."]


def cards_page(reg: Registry, specs: Sequence[ComponentSpec], paths: Mapping[ComponentSpec, str]) -> str:
    """Every card: the named pretrained models (and their tokenizers), then the named datasets; hub repos,
    STAC APIs, licences, sizes."""
    models = [s for s in specs if s.card is not None and s.card.category == "model"]
    lines = ["# Pretrained models and datasets (cards)", "",
             "Named pretrained models and datasets: each is a preset of a loader with where its data lives (a hub "
             "repo and files, or a STAC API and collection). `python -m registry_core pull NAME` fetches a hub card "
             "into huggingface_hub's cache, or lists what a STAC card's search finds; a pipeline naming a card "
             "pulls on build. Generated from the registry.", "", "## Pretrained models", "",
             *(table(["card", "kind", "hub repo", "licence", "parameters", "summary"], _card_rows(models, paths, "params"))
               or ["No model cards."]),
             "", "## Datasets", "", *datasets_table(specs, paths)]
    return page(lines)


def _component_page(reg: Registry, spec: ComponentSpec) -> str:
    rec = show_record(reg, spec)
    facts = [
        ["id", code(spec.id)],
        ["kind", f"[{spec.kind}](index.md)"],
        ["provider", _provider(spec)],
        ["modality", code(spec.modality)],
        ["tags", ", ".join(code(t) for t in spec.tags) or "-"],
        ["target", code(spec.target)],
        ["config schema", code(rec["config"]) if rec["config"] else "-"],
        ["replaces", code(spec.replaces) if spec.replaces else "-"],
        ["replaced by", code(rec["replaced_by"]) if rec["replaced_by"] else "-"],
        ["status", rec["status"]],
    ]
    lines = [f"# {spec.kind} `{spec.name}`", "", spec.summary, "", *table(["", ""], facts), ""]
    if spec.card is not None:
        lines += _card_section(spec)
    use = _use_snippet(spec)
    if use:
        lines += ["In a pipeline file:", "", *use, ""]
    names = {o["name"] for o in rec["options"]}
    declared = reg.ports()
    ports = _ports("Provides", rec["provides"], names, declared) + _ports("Requires", rec["requires"], names, declared)
    if ports:
        lines += ["## Ports", "", *ports]
    lines += ["## Options", ""]
    lines += options_table(rec["options"], "../../ports.md", reg.ports()) or ["This component takes no options."]
    if spec.kind == "recipe":
        recipe = reg.build_spec(spec, None if rec["config"] is None else reg.config(spec.kind, spec.id))
        lines += ["", "## Pipeline", "", f"`recipe = \"{spec.name}\"` in a pipeline file starts from this config:", "",
                  "```toml", *dumps(recipe.config()).rstrip("\n").split("\n"), "```"]
    return page(lines)


def _kind_page(reg: Registry, kind: str, specs: Sequence[ComponentSpec], paths: Mapping[ComponentSpec, str]) -> str:
    ks = reg.kinds()[kind]
    rows = [[f"[{code(s.id)}]({paths[s].rsplit('/', 1)[1]})", code(s.modality), _provider(s),
             s.summary + ("" if reg.status(s) == "active" else f" ({reg.status(s)})")] for s in specs]
    lines = [f"# Kind `{kind}`", "", ks.summary, "",
             f"Declared by: {_provider_of_declaration(reg, ks.plugin)}.",
             *([f"Interface: {code(ks.interface)}."] if ks.interface else []), "",
             *(table(["component", "modality", "provider", "summary"], rows) or ["No component of this kind."]),
             "", "[All kinds](../../index.md)"]
    return page(lines)


def _provider_of_declaration(reg: Registry, plugin: str | None) -> str:
    if plugin is None:
        return f"the core ({CORE_DISTRIBUTION})"
    info = {p.name: p for p in reg.plugins()}.get(plugin)
    return f"{info.distribution} (plugin {code(plugin)})" if info and info.distribution else f"plugin {code(plugin)}"


def _ports_page(reg: Registry, specs: Sequence[ComponentSpec], paths: Mapping[ComponentSpec, str]) -> str:
    lines = ["# Contract ports", "",
             "Values neighbouring components agree on: composition wires an option left at None from the slot that "
             "provides its port, then checks the rules ([the contracts guide](../contracts.md)).", ""]
    def users(name: str, side: str) -> str:
        found = [f"[{code(s.id)}]({paths[s]})" for s in specs if name in getattr(s, side)]
        return ", ".join(found) or "-"

    for name, port in reg.ports().items():
        wired = ", ".join(code(s) for s in port.wire_from) or "the pipeline's slot order"
        lines += [f"## {name}", "", port.description, "",
                  *table(["", ""], [["declared by", _provider_of_declaration(reg, port.plugin)], ["wired from", wired],
                                    ["provided by", users(name, "provides")], ["required by", users(name, "requires")]]), ""]
    return page(lines)


def _index_page(reg: Registry, specs: Sequence[ComponentSpec], paths: Mapping[ComponentSpec, str]) -> str:
    kinds = reg.kinds()
    lines = ["# Component reference", "",
             "Every component, kind, modality, contract port and plugin of the documented distributions, generated "
             "from their specs. Refresh with `python -m registry_core docs docs/reference`.", "",
             "See also: [CLI reference](cli.md), [configuration reference](configuration.md), "
             "[contract ports](ports.md), [pretrained models and datasets](cards.md).", "", "## Kinds", ""]
    lines += table(["kind", "description", "declared by", "components"],
                   [[f"[{k}](components/{k}/index.md)", ks.summary, _provider_of_declaration(reg, ks.plugin),
                     str(sum(s.kind == k for s in specs))] for k, ks in kinds.items()])
    lines += ["", "## Components", ""]
    lines += table(["kind", "component", "modality", "summary"],
                   [[s.kind, f"[{code(s.id)}]({paths[s]})", code(s.modality), s.summary] for s in specs])
    lines += ["", "## Modalities", ""]
    lines += table(["modality", "description", "declared by"],
                   [[code(m.name), m.summary, _provider_of_declaration(reg, m.plugin)] for m in reg.modalities().values()])
    lines += ["", "## Providers", ""]
    rows = [[f"core ({CORE_DISTRIBUTION})", "loaded", "0",
             ", ".join(k for k, v in kinds.items() if v.plugin is None),
             ", ".join(p for p, v in reg.ports().items() if v.plugin is None), ", ".join(CORE_COMMANDS)]]
    for p in reg.plugins():
        rows.append([f"plugin {code(p.name)} ({p.distribution or p.module})", p.status, str(p.components),
                     ", ".join(k for k, v in kinds.items() if v.plugin == p.name) or "-",
                     ", ".join(n for n, v in reg.ports().items() if v.plugin == p.name) or "-",
                     ", ".join(c.name for c in reg.commands().values() if c.plugin == p.name) or "-"])
    lines += table(["provider", "status", "components", "kinds declared", "ports declared", "commands"], rows)
    return page(lines)


def component_pages(reg: Registry) -> dict[str, str]:
    """Relative path -> Markdown for every component, every kind, the ports and the index."""
    specs = reg.list()
    paths = component_paths(specs)
    pages = {paths[s]: _component_page(reg, s) for s in specs}
    for kind in reg.kinds():
        pages[f"components/{kind}/index.md"] = _kind_page(reg, kind, [s for s in specs if s.kind == kind], paths)
    pages["ports.md"] = _ports_page(reg, specs, paths)
    pages["cards.md"] = cards_page(reg, specs, paths)
    pages["index.md"] = _index_page(reg, specs, paths)
    return pages
