"""The registry: finds plugins through entry points, collects their specs, resolves names, builds."""

from __future__ import annotations

import builtins
import dataclasses
import fnmatch
import importlib
import os
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Final, Literal

import pluggy

from registry_core._contracts import CORE_PORTS
from registry_core._errors import NotFoundError, PluginError, RegistryCoreError
from registry_core._kinds import CORE_COMMANDS, CORE_KINDS, CORE_MODALITIES
from registry_core._schema import build_config
from registry_core._spec import (
    NAME_RE,
    Card,
    CommandSpec,
    ComponentSpec,
    KindSpec,
    ModalitySpec,
    PortSpec,
    StacCard,
    check_command,
    check_modality,
    check_port,
    of_type,
    parse_target,
)
from registry_core._suggestions import close_matches, natural_key, nearest
from registry_core._targets import import_target, load_command
from registry_core.hookspecs import PROJECT, hookimpl

__all__ = ["ENVIRONMENT", "ENV_BLOCK", "ENV_DISABLE_AUTOLOAD", "ENV_PLUGINS", "ConflictError", "PluginInfo", "Registry", "get_registry"]

#: Set to ``1`` to load no entry points (then ``REGISTRY_CORE_PLUGINS`` names what to load).
ENV_DISABLE_AUTOLOAD: Final = "REGISTRY_CORE_DISABLE_PLUGIN_AUTOLOAD"
#: Comma-separated modules or entry-point names to load in addition.
ENV_PLUGINS: Final = "REGISTRY_CORE_PLUGINS"
#: Comma-separated entry-point names of plugins to block.
ENV_BLOCK: Final = "REGISTRY_CORE_BLOCK"
#: Every environment variable the registry reads, with what it does (``docs`` prints this table).
ENVIRONMENT: Final[dict[str, str]] = {
    ENV_DISABLE_AUTOLOAD: f"any value but empty or 0: load no entry points (then {ENV_PLUGINS} names what to load)",
    ENV_PLUGINS: "comma-separated modules or entry-point names to load in addition",
    ENV_BLOCK: "comma-separated entry-point names of plugins not to load (reported as blocked)",
}

_BUILTIN_NAME: Final = "registry_core.builtin"

#: Hook specifications: the kernel's, then those the report and the CLI declare beside their code. Named, not
#: imported, at module level (the kernel imports no layer above it); each is standard-library only.
HOOKSPEC_MODULES: Final = ("registry_core.hookspecs", "registry_core.report.hookspecs", "registry_core.cli.hookspecs")

Status = Literal["loaded", "blocked", "broken"]


class _CoreBuilder:
    """The core's own hook implementation: the default way to build a component (plugins' build hooks wrap it)."""

    @hookimpl(trylast=True)
    def registry_core_build_component(self, spec: ComponentSpec, config: Any) -> Any:
        factory = import_target(spec)
        return factory(config) if config is not None else factory()


class ConflictError(RegistryCoreError, LookupError):
    """A short name is provided by more than one plugin and none declares that it replaces the other."""


@dataclass
class PluginInfo:
    """One plugin as the registry sees it."""

    #: Entry-point name (or module name for plugins named in REGISTRY_CORE_PLUGINS).
    name: str
    #: What was loaded: the entry point's value or the module name.
    module: str
    distribution: str | None
    version: str | None
    status: Status
    #: One-line error for a broken plugin, and the full traceback.
    error: str | None = None
    traceback: str | None = None
    components: int = 0
    kinds: int = 0
    #: Seconds spent importing the plugin module.
    import_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _Candidate:
    name: str
    module: str
    distribution: str | None
    version: str | None
    load: Any  # () -> plugin object


def _split_env(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


class Registry:
    """Every component of every loaded plugin, by kind and name.

    ``autoload`` loads the entry points of group ``registry_core``; ``plugins`` adds plugin objects,
    module names or entry-point names; ``blocked`` names entry points not to load. The environment
    variables REGISTRY_CORE_DISABLE_PLUGIN_AUTOLOAD, REGISTRY_CORE_PLUGINS and REGISTRY_CORE_BLOCK apply
    on top unless ``use_env=False``.
    """

    def __init__(
        self,
        autoload: bool = True,
        plugins: Iterable[Any] = (),
        blocked: Iterable[str] = (),
        *,
        use_env: bool = True,
    ) -> None:
        self._pm = pluggy.PluginManager(PROJECT)
        for name in HOOKSPEC_MODULES:
            self._pm.add_hookspecs(importlib.import_module(name))
        self._pm.register(_CoreBuilder(), name=_BUILTIN_NAME)
        self._plugins: dict[str, PluginInfo] = {}
        self._objects: dict[str, Any] = {}
        self._kinds: dict[str, KindSpec] = dict(CORE_KINDS)
        #: Every modality declaration (the core's, then each plugin's; one name may be declared twice).
        self._modality_specs: list[ModalitySpec] = list(CORE_MODALITIES.values())
        self._ports: dict[str, PortSpec] = dict(CORE_PORTS)
        self._commands: dict[str, CommandSpec] = {}
        self._specs: dict[tuple[str, str, str], ComponentSpec] = {}
        self._replaced_by: dict[tuple[str, str], str] = {}
        self._short: dict[tuple[str, str], list[ComponentSpec]] = {}
        #: Registry-level problems that break no plugin (a replacement of something missing, ...).
        self.problems: list[str] = []

        extra = list(plugins)
        block = set(blocked)
        if use_env:
            if os.environ.get(ENV_DISABLE_AUTOLOAD, "").strip() not in ("", "0"):
                autoload = False
            extra += _split_env(os.environ.get(ENV_PLUGINS))
            block |= set(_split_env(os.environ.get(ENV_BLOCK)))
        self._load(autoload, extra, block)

    # -- loading -------------------------------------------------------------------------------

    def _entry_points(self) -> dict[str, _Candidate]:
        # Deferred: importlib.metadata costs start-up time and is only needed when loading plugins.
        import importlib.metadata as md

        found: dict[str, _Candidate] = {}
        for ep in md.entry_points(group=PROJECT):
            dist = getattr(ep, "dist", None)
            cand = _Candidate(
                ep.name,
                ep.value,
                dist.metadata["Name"] if dist is not None else None,
                dist.version if dist is not None else None,
                ep.load,
            )
            if ep.name in found:
                other = found[ep.name]
                self.problems.append(
                    f"entry point {ep.name!r} of distribution {cand.distribution!r} is ignored: the name is "
                    f"already used by distribution {other.distribution!r}; plugin names must be unique"
                )
                continue
            found[ep.name] = cand
        return found

    def _load(self, autoload: bool, extra: Sequence[Any], blocked: set[str]) -> None:
        entry_points = self._entry_points() if (autoload or any(isinstance(e, str) for e in extra)) else {}
        candidates: list[_Candidate] = list(entry_points.values()) if autoload else []
        for item in extra:
            if isinstance(item, str):
                if item in entry_points:
                    if autoload:
                        continue  # already a candidate
                    candidates.append(entry_points[item])
                else:
                    candidates.append(_Candidate(item, item, None, None, lambda m=item: importlib.import_module(m)))
            else:
                name = getattr(item, "__name__", None) or type(item).__name__
                candidates.append(_Candidate(name, name, None, None, lambda obj=item: obj))
        for name in blocked:
            self._pm.set_blocked(name)
        known = {c.name for c in candidates} | set(entry_points)
        for name in sorted(blocked - known):
            near = nearest(name, sorted(known))
            hint = f"; did you mean {near!r}?" if near else f"; plugins: {', '.join(sorted(known)) or '(none)'}"
            self.problems.append(f"{ENV_BLOCK} (or blocked=) names {name!r}, which matches no plugin, so it blocks "
                                 f"nothing{hint}")

        for cand in candidates:
            if cand.name in self._plugins:
                continue
            if cand.name in blocked:
                self._plugins[cand.name] = PluginInfo(cand.name, cand.module, cand.distribution, cand.version, "blocked")
                continue
            self._register(cand)

        # In name order, so "declared first" means the same on every machine (entry points come in any order).
        loaded = sorted((n for n, p in self._plugins.items() if p.status == "loaded"), key=natural_key)
        for name in loaded:
            for hook, add in self._declarations().items():
                self._collect(name, hook, add)
        for name in loaded:
            if self._plugins[name].status == "loaded":
                self._collect_components(name)
        self._resolve()

    def _broken(self, cand: _Candidate, error: str, tb: str | None = None, seconds: float = 0.0) -> None:
        self._plugins[cand.name] = PluginInfo(
            cand.name, cand.module, cand.distribution, cand.version, "broken", error, tb or error, 0, 0, seconds
        )

    def _mark_broken(self, name: str, error: str, tb: str | None = None) -> None:
        info = self._plugins[name]
        info.status, info.error, info.traceback = "broken", error, tb or error
        info.components = info.kinds = 0
        self._specs = {k: s for k, s in self._specs.items() if s.plugin != name}
        self._kinds = {k: v for k, v in self._kinds.items() if v.plugin != name}
        self._modality_specs = [m for m in self._modality_specs if m.plugin != name]
        self._ports = {k: v for k, v in self._ports.items() if v.plugin != name}
        self._commands = {k: v for k, v in self._commands.items() if v.plugin != name}
        obj = self._objects.pop(name, None)
        if obj is not None and self._pm.is_registered(obj):
            self._pm.unregister(obj)

    def _register(self, cand: _Candidate) -> None:
        start = time.perf_counter()
        try:
            obj = cand.load()
        except KeyboardInterrupt:  # a real Ctrl-C still interrupts
            raise
        except BaseException as exc:  # SystemExit / GeneratorExit at import too: a plugin never ends the process
            self._broken(cand, f"import of {cand.module!r} failed: {type(exc).__name__}: {exc}",
                         traceback.format_exc(), time.perf_counter() - start)
            return
        seconds = time.perf_counter() - start
        try:
            self._pm.register(obj, name=cand.name)
        except Exception as exc:  # pluggy's PluginValidationError: arguments not in the hookspec, ...
            self._broken(cand, f"invalid hook implementation: {exc}", traceback.format_exc(), seconds)
            return
        self._objects[cand.name] = obj
        self._plugins[cand.name] = PluginInfo(cand.name, cand.module, cand.distribution, cand.version, "loaded",
                                              import_seconds=seconds)
        unknown = sorted(c.name for c in (self._pm.get_hookcallers(obj) or []) if c.spec is None)
        if unknown:
            known = sorted(n for n, c in vars(self._pm.hook).items() if n.startswith(PROJECT + "_") and c.spec is not None)
            self._mark_broken(
                cand.name,
                f"plugin {cand.name!r} implements unknown hook(s) {', '.join(unknown)}; known hooks: {', '.join(known)}",
            )

    def _call_own(self, plugin: str, hook: str) -> list[Any]:
        """Call one plugin's implementation of a no-argument hook; [] when it has none."""
        caller = getattr(self._pm.hook, hook)
        for impl in caller.get_hookimpls():
            if impl.plugin_name == plugin:
                result = impl.function()
                if result is None:
                    return []
                if not isinstance(result, (list, tuple)):
                    raise PluginError(f"{hook}() must return a list, got {type(result).__name__}")
                return list(result)
        return []

    def _add_kinds(self, plugin: str, items: list[Any]) -> None:
        for k in of_type(items, KindSpec, "registry_core_kinds"):
            if not NAME_RE.match(k.name):
                raise PluginError(f"kind name {k.name!r} is not a valid name (lower-case, digits, '-', '_')")
            if k.name in self._kinds:
                owner = self._kinds[k.name].plugin or "registry_core"
                raise PluginError(f"kind {k.name!r} is already declared by {owner!r}")
            self._kinds[k.name] = KindSpec(k.name, k.summary, k.interface, plugin)
        self._plugins[plugin].kinds = len(items)

    def _declarations(self) -> dict[str, Callable[[str, list[Any]], None]]:
        """Declaration hooks, in the order they are collected, and what takes each plugin's answer."""
        return {
            "registry_core_kinds": self._add_kinds,
            "registry_core_modalities": self._add_modalities,
            "registry_core_ports": self._add_ports,
            "registry_core_commands": self._add_commands,
        }

    def _collect(self, plugin: str, hook: str, add: Callable[[str, list[Any]], None]) -> None:
        """Call one declaration hook of a loaded plugin; a failure or a bad answer breaks the plugin."""
        if self._plugins[plugin].status != "loaded":
            return
        try:
            add(plugin, self._call_own(plugin, hook))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit included: the plugin is broken, the process goes on
            self._mark_broken(plugin, f"{hook}() failed: {type(exc).__name__}: {exc}", traceback.format_exc())

    def _ignored(self, what: str, name: str, plugin: str, owner: str | None) -> None:
        who = f"plugin {owner!r}" if owner else "the core"
        self.problems.append(f"{what} {name!r} declared by plugin {plugin!r} is ignored: {who} already declares it")

    def _add_modalities(self, plugin: str, items: list[Any]) -> None:
        checked = [check_modality(m) for m in of_type(items, ModalitySpec, "registry_core_modalities")]
        self._modality_specs += [dataclasses.replace(m, plugin=plugin) for m in checked]

    def _add_ports(self, plugin: str, items: list[Any]) -> None:
        for p in [check_port(p) for p in of_type(items, PortSpec, "registry_core_ports")]:
            if p.name in self._ports:
                self._ignored("port", p.name, plugin, self._ports[p.name].plugin)
            else:
                self._ports[p.name] = dataclasses.replace(p, plugin=plugin)

    def _add_commands(self, plugin: str, items: list[Any]) -> None:
        for c in [check_command(c) for c in of_type(items, CommandSpec, "registry_core_commands")]:
            if c.name in CORE_COMMANDS:
                self.problems.append(f"command {c.name!r} of plugin {plugin!r} is ignored: it is a core command")
            elif c.name in self._commands:
                self._ignored("command", c.name, plugin, self._commands[c.name].plugin)
            else:
                self._commands[c.name] = dataclasses.replace(c, plugin=plugin)

    def _check_spec(self, spec: Any) -> ComponentSpec:
        if not isinstance(spec, ComponentSpec):
            raise PluginError(f"expected a ComponentSpec, got {spec!r}")
        label = f"spec {spec.kind!r}/{spec.name!r}"
        for attr in ("kind", "name", "target", "summary"):
            if not isinstance(getattr(spec, attr), str) or not getattr(spec, attr).strip():
                raise PluginError(f"{label}: field {attr!r} is missing or empty")
        if spec.kind not in self._kinds:
            near = close_matches(spec.kind, self._kinds)
            raise PluginError(f"{label}: unknown kind {spec.kind!r}" + (f"; did you mean {near[0]!r}?" if near else ""))
        if not NAME_RE.match(spec.name):
            raise PluginError(f"{label}: name must be lower-case letters, digits, '-', '_' or '.'")
        try:
            parse_target(spec.target)
        except ValueError as exc:
            raise PluginError(f"{label}: {exc}") from None
        known = self.modalities()
        if spec.modality not in known:
            near = close_matches(str(spec.modality), known)
            hint = f"; did you mean {near[0]!r}?" if near else " (a plugin declares more through registry_core_modalities)"
            raise PluginError(f"{label}: modality {spec.modality!r} is not one of {', '.join(known)}{hint}")
        if not all(isinstance(t, str) for t in spec.tags):
            raise PluginError(f"{label}: tags must be strings")
        if isinstance(spec.config, str):
            try:
                parse_target(spec.config)
            except ValueError as exc:
                raise PluginError(f"{label}: config {exc}") from None
        elif spec.config is not None and not (isinstance(spec.config, type) and hasattr(spec.config, "__dataclass_fields__")):
            raise PluginError(f"{label}: config must be a dataclass type or a 'module:attr' string")
        if spec.exporter is not None:
            try:
                parse_target(spec.exporter)
            except ValueError as exc:
                raise PluginError(f"{label}: exporter {exc}") from None
        if spec.card is not None:
            self._check_card(label, spec)
        if spec.replaces is not None and (not isinstance(spec.replaces, str) or spec.replaces.count(":") != 1):
            raise PluginError(f"{label}: replaces={spec.replaces!r} must be a qualified id 'plugin:name'")
        return spec

    @staticmethod
    def _check_card(label: str, spec: ComponentSpec) -> None:
        card = spec.card
        if isinstance(card, StacCard):
            Registry._check_stac_card(label, spec, card)
            return
        if not isinstance(card, Card):
            raise PluginError(f"{label}: card must be a registry_core.Card or StacCard, got {type(card).__name__}")
        if not isinstance(card.repo, str) or card.repo.count("/") != 1 or not all(card.repo.split("/")):
            raise PluginError(f"{label}: card repo {card.repo!r} must be a hub repo id 'owner/name'")
        if not card.files or not all(isinstance(f, str) and f and not f.startswith("/") and ".." not in f.split("/")
                                     for f in card.files):
            raise PluginError(f"{label}: card files must be one or more file names inside the repo, got {card.files!r}")
        if card.repo_type not in ("model", "dataset"):
            raise PluginError(f"{label}: card repo_type must be 'model' or 'dataset', got {card.repo_type!r}")
        if spec.config is None:
            raise PluginError(f"{label}: a card needs its loader's config schema (with hub, files, revision options)")

    @staticmethod
    def _check_stac_card(label: str, spec: ComponentSpec, card: StacCard) -> None:
        if not isinstance(card.catalog, str) or not card.catalog.startswith(("http://", "https://")):
            raise PluginError(f"{label}: STAC card catalog {card.catalog!r} must be a STAC API URL (http or https)")
        if not isinstance(card.collection, str) or not card.collection:
            raise PluginError(f"{label}: STAC card collection must be a collection id, got {card.collection!r}")
        if card.signing not in (None, "planetary-computer"):
            raise PluginError(f"{label}: STAC card signing must be None or 'planetary-computer', got {card.signing!r}")
        if card.credentials not in (None, "earthdata", "aws-requester-pays"):
            raise PluginError(f"{label}: STAC card credentials must be None, 'earthdata' or 'aws-requester-pays', "
                              f"got {card.credentials!r}")
        if spec.config is None:
            raise PluginError(f"{label}: a STAC card needs its source's config schema (catalog, collections options)")

    def _collect_components(self, plugin: str) -> None:
        info = self._plugins[plugin]
        try:
            specs = self._call_own(plugin, "registry_core_components")
            mine: dict[tuple[str, str, str], ComponentSpec] = {}
            for raw in specs:
                spec = self._check_spec(raw).with_provider(plugin, info.distribution, info.version)
                key = (spec.kind, plugin, spec.name)
                if key in mine:
                    raise PluginError(f"{spec.kind} {spec.name!r} is registered twice by this plugin")
                mine[key] = spec
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit included
            self._mark_broken(plugin, f"registry_core_components() failed: {type(exc).__name__}: {exc}",
                              traceback.format_exc())
            return
        self._specs.update(mine)
        info.components = len(mine)

    def _resolve(self) -> None:
        """Apply replacements and index short names; several providers of one short name conflict."""
        self._replaced_by.clear()
        self._short.clear()
        for spec in self._specs.values():
            if spec.replaces is None:
                continue
            plugin, _, name = spec.replaces.partition(":")
            target = self._specs.get((spec.kind, plugin, name))
            if target is None:
                problem = (f"{spec.kind} {spec.id!r} replaces {spec.replaces!r}, but no loaded plugin provides "
                           f"{spec.kind} {spec.replaces!r}")
                if problem not in self.problems:  # _resolve runs again after verify_commands
                    self.problems.append(problem)
                continue
            self._replaced_by[(spec.kind, target.id)] = spec.id
        for spec in self._specs.values():
            if (spec.kind, spec.id) in self._replaced_by:
                continue
            names = {spec.name} | {s.name for s in self._replaced_chain(spec)}
            for n in names:
                self._short.setdefault((spec.kind, n), []).append(spec)
        for providers in self._short.values():
            providers.sort(key=lambda s: natural_key(s.id))

    def _replaced_chain(self, spec: ComponentSpec) -> list[ComponentSpec]:
        """Specs that ``spec`` replaces, directly or through a chain of replacements."""
        out = []
        for other in self._specs.values():
            seen = set()
            cur = (other.kind, other.id)
            while cur in self._replaced_by and cur not in seen:
                seen.add(cur)
                cur = (other.kind, self._replaced_by[cur])
                if cur == (spec.kind, spec.id):
                    out.append(other)
                    break
        return out

    # -- queries -------------------------------------------------------------------------------

    def kinds(self) -> dict[str, KindSpec]:
        """Every known kind: the core ones first, then those plugins declared."""
        return dict(self._kinds)

    def modalities(self) -> dict[str, ModalitySpec]:
        """Every known modality: ``any``, then those plugins declared (``text``, ``imagery``...).

        Several plugins may declare one modality (two imagery stacks): the first declaration is shown.
        """
        out: dict[str, ModalitySpec] = {}
        for m in self._modality_specs:
            out.setdefault(m.name, m)
        return out

    def servers(self) -> dict[str, ModalitySpec]:
        """Per modality, the first declaration that names a ``server`` (what ``serve`` runs for it)."""
        out: dict[str, ModalitySpec] = {}
        for m in self._modality_specs:
            if m.server is not None:
                out.setdefault(m.name, m)
        return out

    def ports(self) -> dict[str, PortSpec]:
        """The port table composition wires and checks with: the core's ports, then the plugins'."""
        return dict(self._ports)

    def commands(self) -> dict[str, CommandSpec]:
        """CLI sub-commands the plugins add, by name (their code is not imported)."""
        return dict(self._commands)

    def verify_commands(self) -> None:
        """Import every plugin command's targets; a plugin whose command cannot be imported is marked broken.

        ``plugins`` and ``doctor`` call this; listing and ``--help`` never import command code.
        """
        broken = False
        for command in list(self._commands.values()):
            if command.name not in self._commands:  # its plugin broke on an earlier command
                continue
            try:
                load_command(command, "arguments")
                load_command(command, "handler")
            except PluginError as exc:
                self._mark_broken(str(command.plugin), str(exc), traceback.format_exc())
                broken = True
        if broken:
            self._resolve()

    def plugins(self) -> list[PluginInfo]:
        """Every plugin seen: loaded, blocked or broken, with its error text."""
        return sorted(self._plugins.values(), key=lambda p: natural_key(p.name))

    def _kind_order(self, kind: str) -> tuple[int, Any]:
        order = list(CORE_KINDS)
        return (order.index(kind), ()) if kind in order else (len(order), natural_key(kind))

    def list(
        self,
        kind: str | None = None,
        pattern: str | None = None,
        modality: str | None = None,
        tags: Iterable[str] = (),
    ) -> list[ComponentSpec]:
        """Specs filtered by kind, fnmatch ``pattern`` (on name or qualified id), modality and tags.

        A ``modality`` filter keeps components of that modality and those that work with ``any``.
        """
        if kind is not None and kind not in self._kinds:
            self._unknown_kind(kind)
        want = set(tags)
        out = [
            s
            for s in self._specs.values()
            if (kind is None or s.kind == kind)
            and (pattern is None or fnmatch.fnmatchcase(s.name, pattern) or fnmatch.fnmatchcase(s.id, pattern))
            and (modality is None or s.modality in (modality, "any"))
            and want <= set(s.tags)
        ]
        return sorted(out, key=lambda s: (self._kind_order(s.kind), natural_key(s.name), natural_key(s.plugin or "")))

    def _unknown_kind(self, kind: str) -> None:
        near = close_matches(kind, self._kinds)
        hint = f"; did you mean {near[0]!r}?" if near else f"; known kinds: {', '.join(self._kinds)}"
        raise NotFoundError(f"unknown component kind {kind!r}{hint}")

    def get(self, kind: str, name: str) -> ComponentSpec:
        """The spec for ``name`` (short or ``plugin:name``); LookupError with close matches if none."""
        if kind not in self._kinds:
            self._unknown_kind(kind)
        if ":" in name:
            plugin, _, short = name.partition(":")
            spec = self._specs.get((kind, plugin, short))
            if spec is not None:
                return spec
            candidates = [s.id for s in self._specs.values() if s.kind == kind]
        else:
            providers = self._short.get((kind, name), [])
            if len(providers) == 1:
                return providers[0]
            if len(providers) > 1:
                who = " and ".join(f"{s.id} ({s.distribution or s.plugin} {s.version or ''})".replace(" )", ")")
                                   for s in providers)
                raise ConflictError(
                    f"{kind} {name!r} is provided by {who}; use a qualified id, or have one of them declare "
                    f"replaces=\"{providers[0].id}\""
                )
            candidates = [k[1] for k in self._short if k[0] == kind]
        near = close_matches(name, candidates)
        blocked = [p.name for p in self._plugins.values() if p.status != "loaded"]
        hint = (f"; did you mean {', '.join(repr(n) for n in near)}?" if near
                else "; no loaded plugin provides it (`python -m registry_core plugins` lists them: is the package "
                     "that adds it installed?)")
        if blocked:
            hint += f" (plugins not loaded: {', '.join(blocked)})"
        raise NotFoundError(f"no {kind} named {name!r}{hint}")

    def status(self, spec: ComponentSpec) -> Literal["active", "replaced", "conflict"]:
        """``replaced`` when another component replaces it, ``conflict`` when its short name is ambiguous."""
        if (spec.kind, spec.id) in self._replaced_by:
            return "replaced"
        if len(self._short.get((spec.kind, spec.name), [])) > 1:
            return "conflict"
        return "active"

    def replaced_by(self, spec: ComponentSpec) -> str | None:
        return self._replaced_by.get((spec.kind, spec.id))

    def conflicts(self) -> dict[tuple[str, str], builtins.list[ComponentSpec]]:
        """Short names with more than one provider, by (kind, name)."""
        return {k: list(v) for k, v in self._short.items() if len(v) > 1}

    def shadowed(self) -> builtins.list[tuple[ComponentSpec, str]]:
        """Components replaced by another (spec, qualified id of the replacement)."""
        return [(s, self._replaced_by[(s.kind, s.id)]) for s in self._specs.values() if (s.kind, s.id) in self._replaced_by]

    def describe(self, spec: ComponentSpec) -> dict[str, Any]:
        """The machine-readable record ``list --json`` prints for one spec."""
        return {
            "kind": spec.kind,
            "name": spec.name,
            "id": spec.id,
            "plugin": spec.plugin,
            "distribution": spec.distribution,
            "version": spec.version,
            "summary": spec.summary,
            "modality": spec.modality,
            "tags": list(spec.tags),
            "replaces": spec.replaces,
            "replaced_by": self.replaced_by(spec),
            "status": self.status(spec),
            "card": spec.card.as_dict() if spec.card is not None else None,
        }

    # -- building ------------------------------------------------------------------------------

    def config(self, kind: str, name: str, **options: Any) -> Any:
        """Validate ``options`` for a component and return its config instance (imports no target).

        Names of ``option(ref=kind)`` fields must be components of this registry.
        """
        return build_config(self.get(kind, name), options, registry=self)

    def build(self, kind: str, name: str, **options: Any) -> Any:
        """Validate options (against this registry's components), import the target, build."""
        spec = self.get(kind, name)
        config = build_config(spec, options, registry=self)
        return self.build_spec(spec, config)

    def build_spec(self, spec: ComponentSpec, config: Any) -> Any:
        """Build from an already validated config; plugins' build hooks wrap this."""
        return self._pm.hook.registry_core_build_component(spec=spec, config=config)

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        return self._pm

    def __repr__(self) -> str:
        loaded = sum(p.status == "loaded" for p in self._plugins.values())
        return f"<Registry {len(self._specs)} components from {loaded} plugins>"


_REGISTRY: Registry | None = None


def get_registry(reload: bool = False) -> Registry:
    """The process-wide registry, built on first use (``reload=True`` builds it anew)."""
    global _REGISTRY
    if _REGISTRY is None or reload:
        _REGISTRY = Registry()
    return _REGISTRY
