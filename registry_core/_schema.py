"""Config schemas: dataclasses whose fields carry a type, a default and a description.

Options are validated against the schema before any component code is imported; every problem is
collected so the user sees them all at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, Union

from registry_core._errors import ConfigError, ConfigIssue
from registry_core._spec import Card, ComponentSpec
from registry_core._suggestions import nearest
from registry_core._targets import load_target

__all__ = [
    "FieldInfo",
    "build_config",
    "describe_fields",
    "resolve_config_class",
    "type_name",
    "validate_options",
    "with_card",
]



@dataclass(frozen=True)
class FieldInfo:
    """One config field as ``show`` prints it."""

    name: str
    type: str
    default: Any
    required: bool
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    wired: str | None = None


def resolve_config_class(spec: ComponentSpec) -> type | None:
    """The spec's config dataclass, importing its (light) module when given as ``"module:attr"``."""
    cfg = spec.config
    if cfg is None or isinstance(cfg, type):
        return cfg
    obj = load_target(cfg)
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise TypeError(f"config {cfg!r} of {spec.kind} {spec.id!r} is not a dataclass")
    return obj


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """Resolved annotations of a schema (cached: resolving string annotations is slow)."""
    return typing.get_type_hints(cls)


def type_name(tp: Any) -> str:
    """A readable name for a type annotation (``int | None``, ``list[str]``)."""
    if tp is type(None):
        return "None"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(tp, "__name__", str(tp))


def _default_of(f: dataclasses.Field[Any]) -> tuple[Any, bool]:
    if f.default is not dataclasses.MISSING:
        return f.default, False
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory(), False
    return None, True


def describe_fields(cls: type) -> list[FieldInfo]:
    """The schema's fields, in declaration order, with types, defaults and descriptions."""
    hints = _hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        default, required = _default_of(f)
        md = f.metadata
        out.append(
            FieldInfo(
                name=f.name,
                type=type_name(hints.get(f.name, Any)),
                default=default,
                required=required,
                help=str(md.get("help", "")),
                min=md.get("min"),
                max=md.get("max"),
                choices=md.get("choices"),
                wired=md.get("wired"),
            )
        )
    return out


class _Mismatch(Exception):
    """A value does not fit a type; the message says what was expected."""


class ComponentLookup(Protocol):
    """What checking an ``option(ref=kind)`` needs of a registry: finding a component by kind and name."""

    def get(self, kind: str, name: str) -> ComponentSpec: ...


def _coerce(value: Any, tp: Any, where: str, registry: ComponentLookup | None = None) -> Any:
    """Check ``value`` against annotation ``tp``, converting lossless cases (int->float, list->tuple)."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        for arg in args:
            with contextlib.suppress(_Mismatch):
                return _coerce(value, arg, where, registry)
        raise _Mismatch(f"expected {type_name(tp)}, got {_show(value)}")
    if origin is Literal:
        if value in args and not (isinstance(value, bool) and not any(isinstance(a, bool) for a in args)):
            return value
        raise _Mismatch(f"expected one of {', '.join(repr(a) for a in args)}, got {value!r}")
    if origin in (list, tuple, typing.Sequence, set, frozenset) or tp in (list, tuple):
        return _coerce_sequence(value, tp, where, registry)
    if origin in (dict, Mapping, typing.Mapping) or tp in (dict,):
        if not isinstance(value, Mapping):
            raise _Mismatch(f"expected a table (mapping), got {_show(value)}")
        kt, vt = (*args, Any, Any)[:2]
        return {_coerce(k, kt, where, registry): _coerce(v, vt, f"{where}.{k}", registry) for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and not isinstance(value, tp):
        if not isinstance(value, Mapping):
            raise _Mismatch(f"expected a table for {tp.__name__}, got {_show(value)}")
        obj, issues = validate_options(tp, value, slot=where, registry=registry)
        if issues:
            raise _Mismatch("; ".join(i.message if i.key is None else f"{i.key}: {i.message}" for i in issues))
        return obj
    return _coerce_scalar(value, tp)


def _coerce_scalar(value: Any, tp: Any) -> Any:
    """``value`` as a None, bool, int, float, str, path or instance of class ``tp`` (anything else passes)."""
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch(f"expected None, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch(f"expected a bool (true/false), got {_show(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch(f"expected an int, got {_show(value)}")
    if tp is float:  # nan and inf pass no bound (every comparison with nan is false): refused here
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _Mismatch(f"expected a finite number, got {value}")
            return float(value)
        raise _Mismatch(f"expected a number, got {_show(value)}")
    if tp is Path or tp is os.PathLike:
        if isinstance(value, (str, os.PathLike)):
            return Path(value)
        raise _Mismatch(f"expected a path, got {_show(value)}")
    if isinstance(tp, type) and not isinstance(value, tp):
        what = "a string" if tp is str else tp.__name__
        raise _Mismatch(f"expected {what}, got {_show(value)}")
    return value


def _coerce_sequence(value: Any, tp: Any, where: str, registry: ComponentLookup | None) -> Any:
    """``value`` as the list, tuple or set ``tp`` names, each item checked against its annotation."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise _Mismatch(f"expected a list, got {_show(value)}")
    items = list(value)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(items) != len(args):
            raise _Mismatch(f"expected {len(args)} items, got {len(items)}")
        conv = [_coerce(v, a, f"{where}[{i}]", registry) for i, (v, a) in enumerate(zip(items, args))]
    else:
        item_tp = args[0] if args else Any
        conv = [_coerce(v, item_tp, f"{where}[{i}]", registry) for i, v in enumerate(items)]
    if origin is tuple or tp is tuple:
        return tuple(conv)
    if origin in (set, frozenset):
        return origin(conv)
    return conv


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def validate_options(
    cls: type, options: Mapping[str, Any], slot: str, registry: ComponentLookup | None = None
) -> tuple[Any | None, list[ConfigIssue]]:
    """Validate ``options`` against dataclass ``cls``; returns (instance or None, every issue found).

    ``registry``: where the names of ``option(ref=kind)`` fields must be found (None: not checked).
    """
    issues: list[ConfigIssue] = []
    if not isinstance(options, Mapping):
        return None, [ConfigIssue(slot, None, f"expected a table of options, got {_show(options)}")]
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    names = list(fields)
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        if key not in fields:
            near = nearest(str(key), names)
            hint = f"; did you mean {near!r}?" if near else f"; valid keys: {', '.join(names) or '(none)'}"
            issues.append(ConfigIssue(slot, str(key), f"unknown option {key!r}{hint}"))
            continue
        f = fields[key]
        try:
            conv = _coerce(value, hints.get(key, Any), f"{slot}.{key}", registry)
        except _Mismatch as exc:
            issues.append(ConfigIssue(slot, key, str(exc)))
            continue
        md = f.metadata
        lo, hi, choices = md.get("min"), md.get("max"), md.get("choices")
        if isinstance(conv, (int, float)) and not isinstance(conv, bool):
            if lo is not None and conv < lo:
                issues.append(ConfigIssue(slot, key, f"must be >= {lo}, got {conv}"))
                continue
            if hi is not None and conv > hi:
                issues.append(ConfigIssue(slot, key, f"must be <= {hi}, got {conv}"))
                continue
        if choices is not None and conv not in choices:
            issues.append(ConfigIssue(slot, key, f"must be one of {', '.join(map(repr, choices))}, got {conv!r}"))
            continue
        unknown = _unknown_reference(conv, md.get("ref"), registry)
        if unknown:
            issues.append(ConfigIssue(slot, key, unknown))
            continue
        kwargs[key] = conv
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in kwargs and not any(i.key == name for i in issues):
            help_text = f.metadata.get("help")
            issues.append(ConfigIssue(slot, name, f"required option {name!r} is missing" + (f" ({help_text})" if help_text else "")))
    if issues:
        return None, issues
    try:
        return cls(**kwargs), []
    except (ValueError, TypeError) as exc:  # the schema's own __post_init__ checks
        return None, [_post_init_issue(exc, slot, fields)]


def _unknown_reference(value: Any, kind: str | None, registry: ComponentLookup | None) -> str | None:
    """Why a ``ref`` field's value (a name, or a list of names) names no ``kind`` component of ``registry``."""
    if kind is None or registry is None or value is None:
        return None
    for name in value if isinstance(value, (list, tuple)) else [value]:
        try:
            registry.get(kind, name)
        except LookupError as exc:
            return str(exc.args[0]) if exc.args else f"no {kind} named {name!r}"
    return None


def _post_init_issue(exc: Exception, slot: str, fields: Mapping[str, Any]) -> ConfigIssue:
    """A schema's own check that failed, with the key its message names ("option 'bbox' needs ...")."""
    named = re.match(r"options? '(\w+)'", str(exc))
    return ConfigIssue(slot, named.group(1) if named and named.group(1) in fields else None, str(exc))


def recheck_config(config: Any, slot: str) -> list[ConfigIssue]:
    """Run a config's own checks (``__post_init__``) again, on the values wiring filled in after validation."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type) or not hasattr(config, "__post_init__"):
        return []
    try:
        dataclasses.replace(config)
    except (ValueError, TypeError) as exc:
        return [_post_init_issue(exc, slot, {f.name: f for f in dataclasses.fields(config)})]
    return []


def with_card(spec: ComponentSpec, options: Mapping[str, Any], slot: str) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """``options`` over the card's loader options when ``spec`` is a card; an identity option (repo, files) set
    to another value is an issue: that is another model, named through the loader itself."""
    if spec.card is None or not isinstance(options, Mapping):
        return dict(options) if isinstance(options, Mapping) else options, []
    base = spec.card.loader_options()

    def same(a: Any, b: Any) -> bool:  # a tuple of files given in Python is the card's list
        return (list(a) == list(b)) if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) else a == b

    other = ("For another repo or file use its loader with hub = ..." if isinstance(spec.card, Card) else
             "For another collection use its source with catalog and collections")
    issues = [
        ConfigIssue(slot, key, f"{spec.id} is the card of {spec.card.where}; its {key!r} is fixed "
                               f"({base[key]!r}). {other}")
        for key in spec.card.identity if key in options and not same(options[key], base[key])
    ]
    return {**base, **options}, issues


def build_config(
    spec: ComponentSpec, options: Mapping[str, Any], slot: str | None = None, registry: ComponentLookup | None = None
) -> Any:
    """Validate ``options`` for ``spec`` and return the config instance (None without a schema).

    ``registry``: where the names of ``option(ref=kind)`` fields must be found (None: not checked).
    """
    where = slot or f"{spec.kind} {spec.id}"
    cls = resolve_config_class(spec)
    if cls is None:
        if options:
            raise ConfigError([ConfigIssue(where, k, f"{spec.id} takes no options") for k in options])
        return None
    merged, issues = with_card(spec, options, where)
    obj, found = validate_options(cls, merged, where, registry)
    issues += found
    if issues:
        raise ConfigError(issues)
    return obj
