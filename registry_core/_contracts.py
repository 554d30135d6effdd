"""Contract ports: how neighbouring components agree on shared values (docs/contracts.md).

Each component's spec names ports it ``provides`` and ``requires``. A port value of None means "the
value of my config field of the same name"; composition wires such fields from the component that
provides the port, then checks every rule here. Violations name both components and both values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from registry_core._errors import ConfigIssue
from registry_core._spec import ComponentSpec

__all__ = ["PORTS", "WIRE_FROM", "BandKey", "ComposedSlot", "check_contracts", "same_bands", "wire"]

#: Band name -> its identity (``Registry.band_key``).
BandKey = Callable[[str], str]

#: The port vocabulary, with what each one means.
PORTS: Final[dict[str, str]] = {
    "modality": "text or imagery (from the spec's modality; 'any' fits both)",
    "tokens": "discrete (ids into a vocabulary) or continuous (patch vectors)",
    "vocab_size": "size of the tokenizer's vocabulary",
    "embed_dim": "width of the token vectors the backbone works on",
    "heads": "attention heads of the backbone (rotary and ALiBi encoders need them)",
    "grid": "dimensions of the position grid: 1 (sequence), 2 (image), 3 (time x image)",
    "position_mode": "where a positional encoder acts: additive, rotary or attention_bias",
    "position_modes": "the position modes a backbone's attention accepts",
    "causal": "true for a causal (decoder) backbone, false for a bidirectional encoder",
    "supports_masking": "the backbone can drop tokens (needed by masked-patch objectives such as MAE)",
    "bands": "ordered band names of imagery",
    "patch_size": "side of a square image patch, in pixels",
    "frames": "time steps per sample",
    "max_positions": "the most positions a backbone or positional encoder handles",
    "seq_len": "tokens per training sample (must fit in max_positions)",
}

#: Which slots supply a wired port, in order of preference.
WIRE_FROM: Final[dict[str, tuple[str, ...]]] = {
    "vocab_size": ("tokenizer", "weights"),
    "embed_dim": ("backbone", "weights"),
    "heads": ("backbone", "weights"),
    "max_positions": ("backbone", "positional"),
    "bands": ("data", "weights"),
    "patch_size": ("data", "tokenizer", "weights"),
    "frames": ("data", "tokenizer"),
    "tokens": ("tokenizer", "data"),
    "grid": ("tokenizer", "positional"),
    "seq_len": ("data",),
}

#: Ports whose values are compared by a special rule rather than plain equality.
_SPECIAL: Final = frozenset({"position_modes", "max_positions", "seq_len", "bands"})


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


def fmt(value: Any) -> str:
    """A port value as the user would write it in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


def _providers(slots: Mapping[str, ComposedSlot], port: str, exclude: str) -> list[ComposedSlot]:
    order = WIRE_FROM.get(port, tuple(slots))
    ranked = [slots[s] for s in order if s in slots] + [s for n, s in slots.items() if n not in order]
    return [s for s in ranked if s.slot != exclude and port in s.provides()]


def wire(slots: Mapping[str, ComposedSlot], band_key: BandKey | None = None) -> list[ConfigIssue]:
    """Fill wired config fields from their providers; report user values that disagree with them.

    A user's ``bands`` agrees with the provided ones when they are the same bands by ``band_key``.
    """
    issues: list[ConfigIssue] = []
    for _ in range(3):  # a wired value may itself be provided onwards (backbone -> positional -> ...)
        changed = False
        for s in slots.values():
            for port in s.wired_ports():
                if port in s.wired:
                    continue
                providers = _providers(slots, port, s.slot)
                current = getattr(s.config, port)
                if not providers:
                    continue
                src = providers[0]
                value = src.provides()[port]
                if current is None:
                    object.__setattr__(s.config, port, tuple(value) if isinstance(value, list) else value)
                    s.wired[port] = src.slot
                    changed = True
                elif port in s.options and not (
                    same_bands(current, value, band_key) if port == "bands" else _same(current, value)
                ):
                    issues.append(ConfigIssue(
                        s.slot, port,
                        f"{s.label} sets {port}={fmt(current)} but {src.label} provides {port}={fmt(value)}; "
                        f"remove {s.slot}.{port} to take the wired value, or make them agree",
                    ))
                    s.wired[port] = src.slot
        if not changed:
            break
    for s in slots.values():
        for port, need in s.spec.requires.items():
            if need is None and hasattr(s.config, port) and getattr(s.config, port) is None:
                issues.append(ConfigIssue(
                    s.slot, port,
                    f"{s.label} needs {port}, which no component in this pipeline provides; set {s.slot}.{port}",
                ))
    return issues


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return bool(a == b)


def _explain_bands(a: Sequence[str], b: Sequence[str], key: BandKey) -> str:
    ka, kb = [key(x) for x in a], [key(x) for x in b]
    missing = [_band(x, key) for x, k in zip(a, ka) if k not in kb]
    extra = [_band(x, key) for x, k in zip(b, kb) if k not in ka]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {fmt(missing)}")
        if extra:
            parts.append(f"unexpected {fmt(extra)}")
        return "; ".join(parts)
    if len(a) != len(b):
        return f"{len(a)} bands vs {len(b)}: a band is repeated"
    i = next(i for i, (x, y) in enumerate(zip(ka, kb)) if x != y)
    return f"same bands in another order: position {i} is {_band(a[i], key)} vs {_band(b[i], key)}"


def _band(name: str, key: BandKey) -> str:
    """A band name, with its identity when that differs (``B8A (nir08)``)."""
    k = key(name)
    return name if k == name else f"{name} ({k})"


def same_bands(a: Sequence[str], b: Sequence[str], key: BandKey | None = None) -> bool:
    """Whether two ordered band lists name the same bands in the same order, by identity under ``key``."""
    key = key or _as_written
    return len(a) == len(b) and all(key(x) == key(y) for x, y in zip(a, b))


def _as_written(name: str) -> str:
    return name


def check_contracts(slots: Mapping[str, ComposedSlot], band_key: BandKey | None = None) -> list[ConfigIssue]:
    """Every contract violation between the slots, each naming both components and both values.

    ``band_key`` maps a band name to its identity (``Registry.band_key``: the plugins' band catalogs), so
    the ``bands`` contract accepts the same bands under other names; by default names must be equal.
    """
    key = band_key or _as_written
    issues: list[ConfigIssue] = []
    items = list(slots.values())

    # modality: everything that is not 'any' must agree
    typed = [s for s in items if s.spec.modality != "any"]
    for s in typed[1:]:
        if s.spec.modality != typed[0].spec.modality:
            issues.append(ConfigIssue(
                s.slot, "modality",
                f"{s.label} has modality={s.spec.modality} but {typed[0].label} has modality={typed[0].spec.modality}",
            ))

    # static requirements: requires={"causal": True} or a list of accepted values
    for s in items:
        for port, need in s.spec.requires.items():
            if need is None:
                continue
            providers = _providers(slots, port, s.slot)
            if not providers:
                issues.append(ConfigIssue(
                    s.slot, port, f"{s.label} requires {port}={fmt(need)} but no component in this pipeline provides {port}"))
                continue
            for p in providers:
                have = p.provides()[port]
                ok = have in need if isinstance(need, (list, tuple)) and not isinstance(have, (list, tuple)) else _same(have, need)
                if not ok:
                    want = f"{port} in {fmt(need)}" if isinstance(need, (list, tuple)) else f"{port}={fmt(need)}"
                    issues.append(ConfigIssue(
                        s.slot, port, f"{s.label} requires {want} but {p.label} provides {port}={fmt(have)}"))

    # a backbone states which position modes its attention accepts
    for s in items:
        accepted = s.provides().get("position_modes")
        if accepted is None:
            continue
        for p in items:
            mode = p.provides().get("position_mode")
            if p is not s and mode is not None and mode not in accepted:
                issues.append(ConfigIssue(
                    p.slot, "position_mode",
                    f"{p.label} provides position_mode={mode} but {s.label} accepts position_mode in {fmt(accepted)}"))

    # sequences must fit the positions
    for s in items:
        seq = s.provides().get("seq_len")
        if seq is None:
            continue
        for p in items:
            cap = p.provides().get("max_positions")
            if p is not s and cap is not None and seq > cap:
                issues.append(ConfigIssue(
                    s.slot, "seq_len", f"{s.label} provides seq_len={seq} but {p.label} provides max_positions={cap}"))

    # the same bands in the same order (by identity: B8A and nir08 are one band)
    with_bands = [s for s in items if s.provides().get("bands")]
    for s in with_bands[1:]:
        a, b = list(with_bands[0].provides()["bands"]), list(s.provides()["bands"])
        if not same_bands(a, b, key):
            issues.append(ConfigIssue(
                s.slot, "bands",
                f"{s.label} provides bands={fmt(b)} but {with_bands[0].label} provides bands={fmt(a)} "
                f"({_explain_bands(a, b, key)})"))

    # every other port provided twice must be equal
    seen: dict[str, ComposedSlot] = {}
    for s in items:
        for port, value in s.provides().items():
            if port in _SPECIAL:
                continue
            first = seen.setdefault(port, s)
            if first is not s and not _same(first.provides()[port], value):
                issues.append(ConfigIssue(
                    s.slot, port,
                    f"{s.label} provides {port}={fmt(value)} but {first.label} provides {port}={fmt(first.provides()[port])}"))
    return issues
