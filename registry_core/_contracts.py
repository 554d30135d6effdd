"""Contract ports and rules: how neighbouring components agree on shared values (docs/contracts.md).

Each component's spec names ports it ``provides`` and ``requires``. A port value of None means "the
value of my config field of the same name"; composition wires such fields from the component that
provides the port, then checks every rule in :data:`RULES`. Violations name both components and both
values. The port table is the core's :data:`CORE_PORTS` plus the ports plugins declare
(``Registry.ports()``); a port nobody declares is wired in slot order and compared by equality.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from registry_core._errors import ConfigIssue
from registry_core._spec import ComponentSpec, PortSpec
from registry_core._targets import load_target

__all__ = ["CORE_PORTS", "RULES", "ComposedSlot", "PortCompareError", "check_contracts", "fmt", "rewire", "same_value",
           "wire"]

#: The ports the core itself knows; plugins declare more (``registry_core_ports``).
CORE_PORTS: Final[dict[str, PortSpec]] = {
    p.name: p
    for p in (
        PortSpec("modality", "the spec's modality ('any' fits every other)"),
        PortSpec("tokens", "discrete (ids into a vocabulary) or continuous (vectors)", ("tokenizer", "data")),
        PortSpec("vocab_size", "size of the tokenizer's vocabulary", ("tokenizer", "weights")),
        PortSpec("embed_dim", "width of the token vectors the backbone works on", ("backbone", "weights")),
        PortSpec("heads", "attention heads of the backbone (rotary and ALiBi encoders need them)", ("backbone", "weights")),
        PortSpec("grid", "dimensions of the position grid: 1 (sequence), 2 (image), 3 (time x image)",
                 ("tokenizer", "positional")),
        PortSpec("position_mode", "where a positional encoder acts: additive, rotary or attention_bias"),
        PortSpec("position_modes", "the position modes a backbone's attention accepts"),
        PortSpec("causal", "true for a causal (decoder) backbone, false for a bidirectional encoder"),
        PortSpec("supports_masking", "the backbone can drop tokens (needed by masked objectives such as MAE)"),
        PortSpec("max_positions", "the most positions a backbone or positional encoder handles", ("backbone", "positional")),
        PortSpec("seq_len", "tokens per training sample (must fit in max_positions)", ("data",)),
        PortSpec("task", "what labels are for: classification (a class per sample) or segmentation (a class per "
                 "pixel)", ("data", "head", "objective")),
        PortSpec("num_classes", "classes of the labels", ("data", "head", "objective")),
        PortSpec("class_names", "a name per class", ("data",)),
    )
}

#: Ports checked by their own rule below rather than by "provided twice must be equal".
_OWN_RULE: Final = frozenset({"position_modes", "max_positions", "seq_len"})

Slots = Mapping[str, "ComposedSlot"]
Ports = Mapping[str, PortSpec]
#: A contract rule: every violation it finds among the slots.
Rule = Callable[[Slots, Ports], list[ConfigIssue]]


@dataclass
class ComposedSlot:
    """One slot of a composed pipeline: the resolved spec, the validated config and where values came from."""

    slot: str
    kind: str
    spec: ComponentSpec
    config: Any
    #: Options as the user wrote them (without ``use``).
    options: dict[str, Any] = field(default_factory=dict)
    #: Config fields filled in by wiring: field -> slot it came from.
    wired: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.slot} `{self.spec.name}`"

    def provides(self) -> dict[str, Any]:
        """Effective provided ports: static values, or the config field of the same name."""
        out = {}
        for port, value in self.spec.provides.items():
            out[port] = getattr(self.config, port, None) if value is None else value
        return {k: v for k, v in out.items() if v is not None}

    def value(self, port: str) -> Any:
        """The port's effective value, or the config field of that name when the spec does not declare it."""
        return self.provides().get(port, getattr(self.config, port, None))

    def wired_ports(self) -> list[str]:
        """Ports this slot takes from its neighbours into config fields of the same name."""
        names = [p for p, v in self.spec.requires.items() if v is None]
        if self.config is not None:
            for f in getattr(self.config, "__dataclass_fields__", {}).values():
                if f.metadata.get("wired") and f.name not in names:
                    names.append(f.name)
        return [n for n in names if hasattr(self.config, n)]

    def port_of(self, field_name: str) -> str:
        """The port a wired config field takes its value from: its ``wired=`` name, else the field's own."""
        f = getattr(self.config, "__dataclass_fields__", {}).get(field_name)
        wired = f.metadata.get("wired") if f is not None else None
        return str(wired) if wired else field_name


def fmt(value: Any) -> str:
    """A port value as the user would write it in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


class PortCompareError(Exception):
    """A port's compare or explain function failed, or its target cannot be imported."""


def _call(port: PortSpec, which: str, a: Any, b: Any) -> Any:
    fn = getattr(port, which)
    try:
        return (load_target(fn) if isinstance(fn, str) else fn)(a, b)
    except Exception as exc:
        name = f" {fn!r}" if isinstance(fn, str) else ""
        raise PortCompareError(
            f"the {which} function{name} of port {port.name!r} (plugin {port.plugin!r}) failed with "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return bool(a == b)


def same_value(ports: Ports, port: str, a: Any, b: Any) -> bool:
    """Whether two values of ``port`` agree: by the port's own compare, else by equality (lists as lists).

    Raises PortCompareError when the port's compare function fails.
    """
    spec = ports.get(port)
    return _same(a, b) if spec is None or spec.compare is None else bool(_call(spec, "compare", a, b))


def _explain(ports: Ports, port: str, a: Any, b: Any) -> str:
    """`` (how they differ)`` from the port's explain function; empty when it has none."""
    spec = ports.get(port)
    if spec is None or spec.explain is None:
        return ""
    try:
        return f" ({_call(spec, 'explain', a, b)})"
    except PortCompareError as exc:
        return f" (no explanation: {exc})"


def _providers(slots: Slots, ports: Ports, port: str, exclude: str) -> list[ComposedSlot]:
    """The slots providing ``port`` (other than ``exclude``), in the port's wiring order."""
    spec = ports.get(port)
    order = spec.wire_from if spec is not None and spec.wire_from else tuple(slots)
    ranked = [slots[s] for s in order if s in slots] + [s for n, s in slots.items() if n not in order]
    return [s for s in ranked if s.slot != exclude and port in s.provides()]


# -- wiring ------------------------------------------------------------------------------------


def _wire_port(s: ComposedSlot, name: str, slots: Slots, ports: Ports) -> tuple[bool, ConfigIssue | None]:
    """Fill the wired field ``name`` of ``s`` from its port's first provider; (whether it changed, an issue or None)."""
    port = s.port_of(name)
    providers = _providers(slots, ports, port, s.slot)
    if not providers:
        return False, None
    src = providers[0]
    value, current = src.provides()[port], getattr(s.config, name)
    if current is None:
        object.__setattr__(s.config, name, tuple(value) if isinstance(value, list) else value)
        s.wired[name] = src.slot
        return True, None
    if name not in s.options:
        return False, None
    s.wired[name] = src.slot
    try:
        if same_value(ports, port, current, value):
            return False, None
    except PortCompareError as exc:
        return False, ConfigIssue(s.slot, name, f"{s.label} sets {name}={fmt(current)}, which cannot be compared with "
                                                f"{src.label}'s {port}={fmt(value)}: {exc}")
    return False, ConfigIssue(
        s.slot, name,
        f"{s.label} sets {name}={fmt(current)} but {src.label} provides {port}={fmt(value)}; "
        f"remove {s.slot}.{name} to take the wired value, or make them agree",
    )


def _unwired(slots: Slots) -> list[ConfigIssue]:
    """Required wired ports that stayed empty because nothing provides them."""
    return [
        ConfigIssue(s.slot, port, f"{s.label} needs {port}, which no component in this pipeline provides; set {s.slot}.{port}")
        for s in slots.values()
        for port, need in s.spec.requires.items()
        if need is None and hasattr(s.config, port) and getattr(s.config, port) is None
    ]


def wire(slots: Slots, ports: Ports | None = None) -> list[ConfigIssue]:
    """Fill wired config fields from their providers (in each port's wiring order); report user values
    that disagree with them (compared as the port says: ``bands`` by band identity, when declared)."""
    table = CORE_PORTS if ports is None else ports
    issues: list[ConfigIssue] = []
    for _ in range(3):  # a wired value may itself be provided onwards (backbone -> positional -> ...)
        changed = False
        for s in slots.values():
            for port in s.wired_ports():
                if port not in s.wired:
                    did, issue = _wire_port(s, port, slots, table)
                    changed |= did
                    issues += [issue] if issue else []
        if not changed:
            break
    return issues + _unwired(slots)


def rewire(slots: Slots, source: ComposedSlot, ports: Ports | None = None) -> tuple[list[str], list[ConfigIssue]]:
    """Set the fields wired from ``source`` to the values it provides now (a built tokenizer's true
    ``vocab_size``, once trained or loaded); (the slots that changed, values the user set that disagree).

    ``source`` is its slot with the built component's resolved config; fields taken onwards from a
    changed slot follow, as ``wire`` does.
    """
    table = CORE_PORTS if ports is None else ports
    changed: list[str] = []
    issues: list[ConfigIssue] = []
    sources = {source.slot: source}
    while sources:
        name, src = sources.popitem()
        provided = src.provides()
        for s in slots.values():
            for field_name, origin in s.wired.items():
                port = s.port_of(field_name)
                if origin != name or port not in provided:
                    continue
                value, current = provided[port], getattr(s.config, field_name)
                if same_value(table, port, current, value):
                    continue
                if field_name in s.options:
                    issues.append(ConfigIssue(
                        s.slot, field_name,
                        f"{s.label} sets {field_name}={fmt(current)} but {src.label} provides {port}={fmt(value)} "
                        f"once built; remove {s.slot}.{field_name} to take the built value, or make them agree"))
                    continue
                object.__setattr__(s.config, field_name, tuple(value) if isinstance(value, list) else value)
                if s.slot not in changed:
                    changed.append(s.slot)
                sources[s.slot] = s
    return changed, issues


# -- rules -------------------------------------------------------------------------------------


def modality_agrees(slots: Slots, ports: Ports) -> list[ConfigIssue]:
    """Every component whose modality is not ``any`` has the same modality."""
    typed = [s for s in slots.values() if s.spec.modality != "any"]
    return [
        ConfigIssue(s.slot, "modality",
                    f"{s.label} has modality={s.spec.modality} but {typed[0].label} has modality={typed[0].spec.modality}")
        for s in typed[1:]
        if s.spec.modality != typed[0].spec.modality
    ]


def static_requirements_hold(slots: Slots, ports: Ports) -> list[ConfigIssue]:
    """``requires={"causal": True}`` (or a list of accepted values) holds for every provider of the port."""
    issues: list[ConfigIssue] = []
    for s in slots.values():
        for port, need in s.spec.requires.items():
            if need is None:
                continue
            providers = _providers(slots, ports, port, s.slot)
            if not providers:
                issues.append(ConfigIssue(
                    s.slot, port, f"{s.label} requires {port}={fmt(need)} but no component in this pipeline provides {port}"))
            for p in providers:
                have = p.provides()[port]
                one_of = isinstance(need, (list, tuple)) and not isinstance(have, (list, tuple))
                if not (have in need if one_of else _same(have, need)):
                    want = f"{port} in {fmt(need)}" if isinstance(need, (list, tuple)) else f"{port}={fmt(need)}"
                    issues.append(ConfigIssue(s.slot, port, f"{s.label} requires {want} but {p.label} provides {port}={fmt(have)}"))
    return issues


def position_modes_accepted(slots: Slots, ports: Ports) -> list[ConfigIssue]:
    """A positional encoder's ``position_mode`` is one the backbone's attention accepts (``position_modes``)."""
    issues = []
    for s in slots.values():
        accepted = s.provides().get("position_modes")
        if accepted is None:
            continue
        for p in slots.values():
            mode = p.provides().get("position_mode")
            if p is not s and mode is not None and mode not in accepted:
                issues.append(ConfigIssue(
                    p.slot, "position_mode",
                    f"{p.label} provides position_mode={mode} but {s.label} accepts position_mode in {fmt(accepted)}"))
    return issues


def seq_len_fits(slots: Slots, ports: Ports) -> list[ConfigIssue]:
    """A sample's ``seq_len`` fits in every ``max_positions``."""
    issues = []
    for s in slots.values():
        seq = s.provides().get("seq_len")
        if seq is None:
            continue
        for p in slots.values():
            cap = p.provides().get("max_positions")
            if p is not s and cap is not None and seq > cap:
                issues.append(ConfigIssue(
                    s.slot, "seq_len", f"{s.label} provides seq_len={seq} but {p.label} provides max_positions={cap}"))
    return issues


def _provided(slots: Slots, port: str) -> list[ComposedSlot]:
    """Slots providing ``port`` with a value (an empty list means "not known" and is skipped)."""
    return [s for s in slots.values() if s.provides().get(port) not in (None, [], ())]


def _compare_pair(first: ComposedSlot, s: ComposedSlot, port: str, ports: Ports) -> list[ConfigIssue]:
    a, b = first.provides()[port], s.provides()[port]
    head = f"{s.label} provides {port}={fmt(b)} but {first.label} provides {port}={fmt(a)}"
    try:
        same = same_value(ports, port, a, b)
    except PortCompareError as exc:
        return [ConfigIssue(s.slot, port, f"{head}, and they cannot be compared: {exc}")]
    return [] if same else [ConfigIssue(s.slot, port, head + _explain(ports, port, a, b))]


def custom_ports_agree(slots: Slots, ports: Ports) -> list[ConfigIssue]:
    """Ports with their own compare (``bands``: the same bands in the same order, by identity) agree."""
    issues = []
    for port in (p.name for p in ports.values() if p.compare is not None):
        with_port = _provided(slots, port)
        for s in with_port[1:]:
            issues += _compare_pair(with_port[0], s, port, ports)
    return issues


def other_ports_agree(slots: Slots, ports: Ports) -> list[ConfigIssue]:
    """Every other port provided by two components has one value (``embed_dim``, ``grid``, ``tokens``...)."""
    custom = {p.name for p in ports.values() if p.compare is not None}
    issues = []
    seen: dict[str, ComposedSlot] = {}
    for s in slots.values():
        for port, value in s.provides().items():
            if port in _OWN_RULE or port in custom:
                continue
            first = seen.setdefault(port, s)
            if first is not s and not _same(first.provides()[port], value):
                issues.append(ConfigIssue(
                    s.slot, port,
                    f"{s.label} provides {port}={fmt(value)} but {first.label} provides {port}={fmt(first.provides()[port])}"))
    return issues


#: Every contract rule, in the order their violations are reported.
RULES: Final[tuple[Rule, ...]] = (
    modality_agrees,
    static_requirements_hold,
    position_modes_accepted,
    seq_len_fits,
    custom_ports_agree,
    other_ports_agree,
)


def check_contracts(slots: Slots, ports: Ports | None = None) -> list[ConfigIssue]:
    """Every contract violation between the slots, each naming both components and both values.

    ``ports`` is the port table (``Registry.ports()``: the core's ports and the plugins'); default: the core's.
    """
    table = CORE_PORTS if ports is None else ports
    return [issue for rule in RULES for issue in rule(slots, table)]
