"""Specs: the static, import-free descriptions of what a plugin declares (components, kinds, modalities, ports,
commands), and the checks the registry runs on each before accepting it."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Final, TypeVar

from registry_core._errors import PluginError

__all__ = [
    "Card",
    "CommandSpec",
    "ComponentSpec",
    "KindSpec",
    "ModalitySpec",
    "PortSpec",
    "StacCard",
    "check_command",
    "check_modality",
    "check_port",
    "of_type",
    "option",
    "parse_target",
]

#: A valid short name: lower-case letters, digits, ``-``, ``_`` and ``.``, starting alphanumeric.
NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
#: A ``"module:attr"`` target; dotted on both sides.
TARGET_RE: Final = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


#: Every option that says where a hub loader's files come from (``registry_core.choices.HubSource``).
CARD_SOURCE: Final = ("hub", "files", "revision", "repo_type", "sha256")


@dataclass(frozen=True)
class Card:
    """A named real thing a loader component reads (a pretrained model on a hub), as data: where it lives, what
    it is, and what using it needs. Reading a card imports nothing and touches no network.

    A spec with a card is a preset of its loader (same ``target`` and ``config``): building it passes the card's
    ``hub``, ``files``, ``revision`` and ``sha256`` (and its ``options``) to the loader, which pulls the files.
    """

    #: The hub repo id, e.g. ``"openai-community/gpt2"``.
    repo: str
    #: The files the loader reads from the repo (all of them are pulled).
    files: tuple[str, ...]
    #: Branch, tag or commit to pull; a user may pin another (``revision = "..."``, ``pull --revision``).
    revision: str = "main"
    #: ``"model"`` or ``"dataset"``.
    repo_type: str = "model"
    #: sha256 of files whose hash is published (the hub's LFS ids); a pulled file that differs is refused.
    sha256: Mapping[str, str] = field(default_factory=dict)
    #: SPDX licence id (``"mit"``, ``"apache-2.0"``), as the repo's model card states it.
    licence: str | None = None
    #: Parameter count of what the files hold.
    params: int | None = None
    #: Where the model is described (the hub page, the paper).
    source: str | None = None
    #: True when the hub asks users to accept terms first (a token is needed).
    gated: bool = False
    #: What inputs it expects, as data: tokenizer files; bands, mean/std, patch size, frames, LayerNorm eps.
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    #: Further options of the loader this card sets (a user may change them, not the identity ones).
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(self.files))
        object.__setattr__(self, "sha256", _frozen_mapping(self.sha256))
        object.__setattr__(self, "preprocessing", _frozen_mapping(self.preprocessing))
        object.__setattr__(self, "options", _frozen_mapping(self.options))

    #: The loader options that say which thing this is (changing one names another repo: use the loader itself).
    identity: ClassVar[tuple[str, ...]] = ("hub", "files", "repo_type")

    @property
    def where(self) -> str:
        """Where the thing lives, in one word (``list``'s column, messages): the hub repo id."""
        return self.repo

    @property
    def category(self) -> str:
        """``"model"`` or ``"dataset"``."""
        return self.repo_type

    def loader_options(self) -> dict[str, Any]:
        """The options this card gives its loader: the identity ones, the revision, the hashes and ``options``."""
        return {"hub": self.repo, "files": list(self.files), "revision": self.revision,
                "repo_type": self.repo_type, "sha256": dict(self.sha256) or None, **dict(self.options)}

    def as_dict(self) -> dict[str, Any]:
        """The card as plain data (``show --json``, the docs' card table)."""
        return {"repo": self.repo, "files": list(self.files), "revision": self.revision, "repo_type": self.repo_type,
                "sha256": dict(self.sha256), "licence": self.licence, "params": self.params, "source": self.source,
                "gated": self.gated, "preprocessing": copy.deepcopy(dict(self.preprocessing)),
                "options": copy.deepcopy(dict(self.options))}


@dataclass(frozen=True)
class StacCard:
    """A named STAC collection behind an API (Sentinel-2 L2A on Earth Search), as data: the API, the collection,
    what its items hold and what reading their assets needs. Reading a card imports nothing and touches no network.

    A spec with a STAC card is a preset of its STAC data source (same ``target`` and ``config``): building it
    passes ``catalog``, ``collections``, ``signing``, ``credentials`` and ``options`` to the source; the user adds
    the area and dates. ``catalog`` may be changed (a mirror of the same API); the collection may not.
    """

    #: The STAC API's root URL, e.g. ``"https://earth-search.aws.element84.com/v1"``.
    catalog: str
    #: The collection id at that API, e.g. ``"sentinel-2-l2a"``.
    collection: str
    #: What the collection's data may be used for (a licence id or the provider's terms, by name).
    licence: str | None = None
    #: Where the collection is described (the provider's page).
    source: str | None = None
    #: How to cite it.
    citation: str | None = None
    #: How asset links are made readable: ``None`` (public) or ``"planetary-computer"`` (SAS tokens).
    signing: str | None = None
    #: Credentials reading the assets needs: ``None``, ``"earthdata"`` (NASA) or ``"aws-requester-pays"``.
    credentials: str | None = None
    #: What the items hold, as data: sensor, bands (asset key -> catalog band), resolution, cloud mask, scale/offset.
    about: Mapping[str, Any] = field(default_factory=dict)
    #: Further options of the source this card sets (bands, cloud mask, resolution); a user may change them.
    options: Mapping[str, Any] = field(default_factory=dict)

    identity: ClassVar[tuple[str, ...]] = ("collections",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "about", _frozen_mapping(self.about))
        object.__setattr__(self, "options", _frozen_mapping(self.options))

    @property
    def where(self) -> str:
        return f"{self.catalog} {self.collection}"

    @property
    def category(self) -> str:
        return "dataset"

    def loader_options(self) -> dict[str, Any]:
        """The options this card gives its source: the API, the collection, signing, credentials and ``options``."""
        return {"catalog": self.catalog, "collections": [self.collection], "signing": self.signing or "none",
                "credentials": self.credentials or "none", **copy.deepcopy(dict(self.options))}

    def as_dict(self) -> dict[str, Any]:
        """The card as plain data (``show --json``, the docs' card table)."""
        return {"catalog": self.catalog, "collection": self.collection, "licence": self.licence,
                "source": self.source, "citation": self.citation, "signing": self.signing,
                "credentials": self.credentials, "about": copy.deepcopy(dict(self.about)),
                "options": copy.deepcopy(dict(self.options))}


@dataclass(frozen=True)
class ComponentSpec:
    """What a plugin says about one component, readable without importing its code.

    ``target`` names the factory (``"module:attr"``) imported only when the component is built; it is
    called with one argument, the validated config dataclass instance (or none when ``config`` is None).
    """

    #: Component kind, e.g. ``"tokenizer"``; a core kind or one a plugin declared.
    kind: str
    #: Short name, unique per kind and plugin, e.g. ``"bpe"``.
    name: str
    #: ``"module:attr"`` of the factory, imported lazily.
    target: str
    #: One line for ``list``.
    summary: str
    #: ``"any"`` or a modality a plugin declares (``"text"`` from registry-llm, ``"imagery"`` from registry-gfm).
    modality: str = "any"
    #: Free-form tags for filtering (``list --tag``).
    tags: tuple[str, ...] = ()
    #: Config schema: a dataclass type, or ``"module:attr"`` naming one in a module without heavy imports.
    config: type | str | None = None
    #: Contract ports this component offers its neighbours (see docs/contracts.md).
    provides: Mapping[str, Any] = field(default_factory=dict)
    #: Contract ports this component needs from its neighbours.
    requires: Mapping[str, Any] = field(default_factory=dict)
    #: Qualified id (``plugin:name``) of a component of the same kind that this one replaces.
    replaces: str | None = None
    #: ``"module:attr"`` of ``(pipeline, out_dir) -> Path`` writing a trained pipeline in this format, imported
    #: only when used (``python -m registry_core export RUN --to NAME OUT``); a weights component's way back out.
    exporter: str | None = None
    #: A named real thing this entry is (a pretrained model, a dataset on a hub, a STAC collection): a preset of
    #: its loader, whose ``target`` and ``config`` it shares. Tagged ``pretrained`` (models) or ``dataset``.
    card: Card | StacCard | None = None
    #: Filled in by the registry: the entry-point name of the providing plugin.
    plugin: str | None = None
    #: Filled in by the registry: the providing distribution and its version.
    distribution: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        # Keep the spec immutable all the way down, so a registry can hand it out freely.
        tags = tuple(self.tags)
        if self.card is not None:  # a model card is "pretrained", a dataset card a "dataset"
            tag = "pretrained" if self.card.category == "model" else "dataset"
            tags += () if tag in tags else (tag,)
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "provides", _frozen_mapping(self.provides))
        object.__setattr__(self, "requires", _frozen_mapping(self.requires))

    @property
    def id(self) -> str:
        """The qualified id ``plugin:name`` (just ``name`` before the registry fills in the plugin)."""
        return f"{self.plugin}:{self.name}" if self.plugin else self.name

    def with_provider(self, plugin: str, distribution: str | None, version: str | None) -> ComponentSpec:
        return dataclasses.replace(self, plugin=plugin, distribution=distribution, version=version)

    def __hash__(self) -> int:
        return hash((self.kind, self.plugin, self.name))


@dataclass(frozen=True)
class KindSpec:
    """A component kind: its name, what it is for, and optionally its interface (``"module:attr"``)."""

    name: str
    summary: str
    interface: str | None = None
    plugin: str | None = None


@dataclass(frozen=True)
class ModalitySpec:
    """A kind of data components work on (``text``, ``imagery``); components of two modalities do not mix.

    ``server`` names a function ``(target, argparse.Namespace) -> registry_core.serve.Served`` that ``serve`` calls
    for a run folder or card of this modality, and ``serve_arguments`` one ``(argument group) -> None`` adding its
    options to ``serve`` (both ``"module:attr"``, imported only when ``serve`` is parsed and run).
    """

    name: str
    summary: str
    plugin: str | None = None
    server: str | None = None
    serve_arguments: str | None = None


@dataclass(frozen=True)
class CommandSpec:
    """A CLI sub-command a plugin adds, declared statically so ``--help`` and ``list`` import none of its code.

    ``arguments`` names a function ``(argparse.ArgumentParser) -> None`` adding the command's options and
    ``handler`` a function ``(argparse.Namespace) -> int`` returning the exit code (both ``"module:attr"``);
    they are imported only when this command is parsed and run.
    """

    #: The sub-command, e.g. ``"generate"``.
    name: str
    #: One line for ``--help``.
    help: str
    arguments: str
    handler: str
    #: Filled in by the registry: the entry-point name of the providing plugin.
    plugin: str | None = None


#: How two values of a port compare (True: they agree), and how a mismatch is explained (a phrase).
Compare = Callable[[Any, Any], bool]
Explain = Callable[[Any, Any], str]


@dataclass(frozen=True)
class PortSpec:
    """A contract port: what it means, which slots it is wired from, and how two values compare.

    ``compare`` and ``explain`` are callables or ``"module:attr"`` targets, imported only when two values
    are compared (keep those modules free of torch); without ``compare`` values must be equal.
    """

    name: str
    description: str
    #: Slots that supply the port when wiring, in order of preference (empty: the pipeline's slot order).
    wire_from: tuple[str, ...] = ()
    compare: Compare | str | None = None
    explain: Explain | str | None = None
    #: Filled in by the registry: the plugin that declares the port (None: the core).
    plugin: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "wire_from", tuple(self.wire_from))


def parse_target(target: str) -> tuple[str, str]:
    """Split ``"pkg.module:attr.sub"`` into module and attribute path; ValueError when malformed."""
    if not isinstance(target, str) or not TARGET_RE.match(target):
        raise ValueError(f"target {target!r} is not of the form 'package.module:attribute'")
    module, _, attr = target.partition(":")
    return module, attr


_MISSING: Any = dataclasses.MISSING


def option(
    default: Any = _MISSING,
    *,
    help: str,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[Any, ...] | None = None,
    wired: str | None = None,
    ref: str | None = None,
) -> Any:
    """A config-schema field with a description and optional bounds.

    ``wired`` names the contract port whose value composition fills in when the user leaves the
    field at None (e.g. ``embed_dim`` taken from the backbone). ``ref`` names a kind: the value (or each
    name of a list) must be a component of that kind in the registry that validates the config (e.g.
    ``option("stackstac", help=..., ref="stac_loader")``). Mutable defaults are copied per instance.
    """
    metadata = {"help": help, "min": min, "max": max, "choices": choices, "wired": wired, "ref": ref}
    if default is not _MISSING and getattr(default, "__hash__", None) is None:  # list, dict, dataclass...
        value = default
        return field(default_factory=lambda: copy.deepcopy(value), metadata=metadata)
    if default is _MISSING:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


# -- checks of declarations besides components (each raises PluginError naming the declaration) --------------

T = TypeVar("T")


def of_type(items: list[Any], cls: type[T], hook: str) -> list[T]:
    """``items`` when every one is a ``cls``; PluginError naming the first that is not."""
    for item in items:
        if not isinstance(item, cls):
            raise PluginError(f"{hook}() returned {item!r}, expected a {cls.__name__}")
    return items


def _text(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise PluginError(f"{what} is missing or empty")


def _target(value: Any, what: str) -> None:
    try:
        parse_target(value)
    except ValueError as exc:
        raise PluginError(f"{what}: {exc}") from None


def check_modality(m: ModalitySpec) -> ModalitySpec:
    if not isinstance(m.name, str) or not NAME_RE.match(m.name):
        raise PluginError(f"modality name {m.name!r} is not a valid name (lower-case, digits, '-', '_')")
    _text(m.summary, f"modality {m.name!r}: field 'summary'")
    for field_name in ("server", "serve_arguments"):
        if getattr(m, field_name) is not None:
            _target(getattr(m, field_name), f"modality {m.name!r}: {field_name}")
    return m


def check_port(p: PortSpec) -> PortSpec:
    if not isinstance(p.name, str) or not p.name.isidentifier():
        raise PluginError(f"port name {p.name!r} is not a valid name (a config field name such as 'bands')")
    label = f"port {p.name!r}"
    _text(p.description, f"{label}: field 'description'")
    if not all(isinstance(s, str) for s in p.wire_from):
        raise PluginError(f"{label}: wire_from must be slot names, got {p.wire_from!r}")
    for attr in ("compare", "explain"):
        fn = getattr(p, attr)
        if isinstance(fn, str):
            _target(fn, f"{label}: {attr}")
        elif fn is not None and not callable(fn):
            raise PluginError(f"{label}: {attr} must be a callable or a 'module:attr' string, got {fn!r}")
    return p


def check_command(c: CommandSpec) -> CommandSpec:
    if not isinstance(c.name, str) or not NAME_RE.match(c.name):
        raise PluginError(f"command name {c.name!r} is not a valid name (lower-case, digits, '-', '_')")
    label = f"command {c.name!r}"
    _text(c.help, f"{label}: field 'help'")
    _target(c.arguments, f"{label}: arguments")
    _target(c.handler, f"{label}: handler")
    return c
