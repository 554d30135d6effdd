"""Composition: a plain config (dict or TOML) -> checked slots, importing no component code.

``registry_core.compose`` (in ``_pipeline``) wraps the result in a Pipeline; this module knows nothing
of pipelines, so the dependency runs one way.

Order: (1) resolve every name and validate every option, (2) wire shared values along the chain,
(3) check contracts. All issues of a stage are reported together as one ConfigError.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from registry_core._contracts import ComposedSlot, check_contracts, wire
from registry_core._errors import ConfigError, ConfigIssue
from registry_core._registry import Registry, get_registry
from registry_core._schema import recheck_config, resolve_config_class, validate_options, with_card
from registry_core._suggestions import nearest
from registry_core.pipeline._size_check import size_issues
from registry_core.pipeline._train_config import TrainConfig

__all__ = ["LIST_SLOTS", "META_KEYS", "REQUIRED_SLOTS", "SLOTS", "Composition", "apply_overrides", "compose_config", "compose_slot", "load_toml",
           "resolve_slot"]

#: Component slots of a pipeline and the kind each one takes, in chain order.
SLOTS: Final[dict[str, str]] = {
    "data": "data_source",
    "tokenizer": "tokenizer",
    "positional": "positional_encoder",
    "backbone": "backbone",
    "objective": "objective",
    "head": "head",
    "weights": "weights",
}
#: Slots that hold a list of components.
LIST_SLOTS: Final[dict[str, str]] = {"evaluators": "evaluator"}
REQUIRED_SLOTS: Final = ("data", "tokenizer", "backbone", "objective")
#: Other top-level keys, with what each one does (``docs`` prints this table).
#: What a pipeline ``name`` may be: a name, never a path (the default run folder is ``runs/<name>``).
PIPELINE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

META_KEYS: Final[dict[str, str]] = {
    "name": "the pipeline's name: `run` writes into runs/<name> unless --out is given (default: the file's stem)",
    "description": "free text, written back into the saved pipeline.toml",
    "recipe": "start from this recipe's config; the file's own tables override it (see below)",
    "train": "the [train] table: optimizer, schedule, batch, precision, checkpoints (see below)",
}


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a pipeline file; a syntax error names the file and the line."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"pipeline file {str(p)!r} does not exist", slot=str(p)) from None
    except IsADirectoryError:
        raise ConfigError(f"pipeline file {str(p)!r} is a directory; expected a TOML file", slot=str(p)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"pipeline file {str(p)!r} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
                          "expected a TOML file", slot=str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}", slot=str(p)) from None


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: a string


def apply_overrides(config: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``slot.key=value`` overrides (values in TOML syntax; bare words are strings)."""
    out = copy.deepcopy(dict(config))
    for item in overrides:
        path, sep, raw = item.partition("=")
        keys = path.strip().split(".")
        if not sep or len(keys) < 2 or not all(keys):
            raise ConfigError(f"override {item!r} is not of the form slot.key=value", slot="--set")
        table: Any = out
        for k in keys[:-1]:
            nxt = table.setdefault(k, {}) if isinstance(table, dict) else None
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {item!r}: {k!r} is not a table", slot="--set")
            table = nxt
        table[keys[-1]] = _parse_value(raw.strip())
    return out


def _merge_recipe(config: Mapping[str, Any], registry: Registry, issues: list[ConfigIssue]) -> dict[str, Any]:
    """A ``recipe = "name"`` key starts from that recipe's config; the file's own tables override it."""
    name = config.get("recipe")
    if name is None:
        return dict(config)
    if not isinstance(name, str):
        issues.append(ConfigIssue("recipe", None, f"expected a recipe name, got {name!r}"))
        return dict(config)
    try:
        recipe = registry.build("recipe", name)
        base = dict(recipe.config())
    except LookupError as exc:
        issues.append(ConfigIssue("recipe", None, str(exc.args[0])))
        return dict(config)
    merged = copy.deepcopy(base)
    for key, value in config.items():
        if key == "recipe":
            continue
        old = merged.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping) and value.get("use", old.get("use")) == old.get("use"):
            merged[key] = {**old, **value}
        else:
            merged[key] = value
    return merged


def resolve_slot(slot: str, kind: str, table: Any, registry: Registry, issues: list[ConfigIssue]) -> ComposedSlot | None:
    """One slot's table resolved to its spec and validated config; problems go into ``issues``."""
    if not isinstance(table, Mapping):
        issues.append(ConfigIssue(slot, None, f"expected a table like {{use = \"name\", ...options}}, got {table!r}"))
        return None
    use = table.get("use")
    if not isinstance(use, str) or not use:
        issues.append(ConfigIssue(slot, "use", f"missing 'use = \"<{kind} name>\"' naming the component for this slot"))
        return None
    try:
        spec = registry.get(kind, use)
    except LookupError as exc:
        issues.append(ConfigIssue(slot, "use", str(exc.args[0])))
        return None
    options = {str(k): v for k, v in table.items() if k != "use"}
    try:
        cls = resolve_config_class(spec)
    except Exception as exc:  # a plugin bug, still reported against the slot
        issues.append(ConfigIssue(slot, None, f"config schema {spec.config!r} of {spec.id} cannot be loaded: {exc}"))
        return None
    if cls is None:
        issues += [ConfigIssue(slot, k, f"{spec.id} takes no options") for k in options]
        return ComposedSlot(slot, kind, spec, None, options)
    merged, fixed = with_card(spec, options, slot)  # a card: its loader's options, under the user's
    config, found = validate_options(cls, merged, slot, registry=registry)
    issues += fixed + found
    return None if config is None or fixed else ComposedSlot(slot, kind, spec, config, options)


def compose_slot(config: Mapping[str, Any], slot: str, registry: Registry | None = None) -> ComposedSlot:
    """Resolve and validate one slot of a pipeline config alone (``ingest`` builds only ``data``).

    Raises ConfigError naming the slot when the table is missing or invalid; nothing is wired or checked.
    """
    if slot not in SLOTS:
        raise ConfigError(f"unknown slot {slot!r}; expected one of {', '.join(SLOTS)}", slot=slot)
    if slot not in config:
        raise ConfigError(f"the file has no [{slot}] table", slot=slot)
    issues: list[ConfigIssue] = []
    resolved = resolve_slot(slot, SLOTS[slot], config[slot], registry or get_registry(), issues)
    if issues or resolved is None:
        raise ConfigError(issues or f"[{slot}] could not be resolved", slot=slot)
    return resolved


@dataclass
class Composition:
    """A composed pipeline config: resolved, validated and wired slots that passed every contract."""

    slots: dict[str, ComposedSlot]
    evaluators: list[ComposedSlot]
    train: TrainConfig
    registry: Registry
    name: str | None = None
    description: str | None = None
    source: Path | None = None


def _top_level_issues(config: Mapping[str, Any]) -> list[ConfigIssue]:
    """Unknown top-level keys (with a did-you-mean), missing required slots, non-string name/description."""
    issues = []
    known = [*SLOTS, *LIST_SLOTS, *META_KEYS]
    for key in config:
        if key not in known:
            near = nearest(str(key), known)
            hint = f"did you mean {near!r}?" if near else f"expected one of {', '.join(known)}"
            issues.append(ConfigIssue(str(key), None, f"unknown pipeline key {key!r}; {hint}"))
    for slot in REQUIRED_SLOTS:
        if slot not in config:
            issues.append(ConfigIssue(slot, None, f"the pipeline needs a [{slot}] table naming a {SLOTS[slot]}"))
    for key in ("name", "description"):
        if key in config and not isinstance(config[key], str):
            issues.append(ConfigIssue(key, None, f"expected a string, got {config[key]!r}"))
    name = config.get("name")
    if isinstance(name, str) and not PIPELINE_NAME.fullmatch(name):
        issues.append(ConfigIssue("name", None, f"expected a plain name (letters, digits, '.', '_', '-'; no path): "
                                                f"`run` writes into runs/<name>, got {name!r}"))
    return issues


def _resolve_all(config: Mapping[str, Any], reg: Registry,
                 issues: list[ConfigIssue]) -> tuple[dict[str, ComposedSlot], list[ComposedSlot]]:
    """Every component slot and every entry of the list slots (evaluators), resolved and validated."""
    slots: dict[str, ComposedSlot] = {}
    for slot, kind in SLOTS.items():
        if slot in config:
            resolved = resolve_slot(slot, kind, config[slot], reg, issues)
            if resolved is not None:
                slots[slot] = resolved
    listed: list[ComposedSlot] = []
    for slot, kind in LIST_SLOTS.items():
        entries = config.get(slot, [])
        if not isinstance(entries, list):
            issues.append(ConfigIssue(slot, None, f"expected an array of tables ([[{slot}]]), got {entries!r}"))
            continue
        for i, entry in enumerate(entries):
            resolved = resolve_slot(f"{slot}[{i}]", kind, entry, reg, issues)
            if resolved is not None:
                listed.append(resolved)
    return slots, listed


def compose_config(config: Mapping[str, Any] | str | Path, registry: Registry | None = None) -> Composition:
    """Resolve, validate, wire and check a pipeline config; raises ConfigError listing every issue."""
    reg = registry or get_registry()
    source = None
    if isinstance(config, (str, Path)):
        source = Path(config)
        config = load_toml(source)
    if not isinstance(config, Mapping):
        raise ConfigError(f"a pipeline config is a table of slots, got {type(config).__name__}", slot="pipeline")
    issues: list[ConfigIssue] = []
    config = _merge_recipe(config, reg, issues)
    issues += _top_level_issues(config)
    slots, evaluators = _resolve_all(config, reg, issues)
    train, found = validate_options(TrainConfig, config.get("train", {}), "train", registry=reg)
    issues += found
    if issues or train is None:
        raise ConfigError(issues)

    everything = {**slots, **{s.slot: s for s in evaluators}}
    issues += wire(everything, reg.ports())
    for s in everything.values():  # a wired value passes the component's own checks too (rope-2d's head_dim)
        if s.wired:
            issues += recheck_config(s.config, s.slot)
    issues += check_contracts(everything, reg.ports())
    if not issues:
        issues += size_issues(slots, train)
    if issues:
        raise ConfigError(issues)
    return Composition(slots, evaluators, train, reg, config.get("name"), config.get("description"), source)
