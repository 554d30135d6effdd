"""Contract ports from plugins (registry_core_ports) and the contract rules, each checked alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from registry_core import ComponentSpec, PortSpec, Registry
from registry_core._contracts import (
    CORE_PORTS,
    RULES,
    ComposedSlot,
    check_contracts,
    custom_ports_agree,
    modality_agrees,
    other_ports_agree,
    position_modes_accepted,
    seq_len_fits,
    static_requirements_hold,
    wire,
)


def slot(name: str, modality: str = "any", provides: dict[str, Any] | None = None,
         requires: dict[str, Any] | None = None, config: Any = None, **options: Any) -> ComposedSlot:
    spec = ComponentSpec("backbone", f"{name}-part", "m:f", "A part.", modality=modality, provides=provides or {},
                         requires=requires or {})
    return ComposedSlot(name, "backbone", spec, config, options)


def slots(*items: ComposedSlot) -> dict[str, ComposedSlot]:
    return {s.slot: s for s in items}


def messages(issues: list[Any]) -> list[str]:
    return [str(i) for i in issues]


def close(a: float, b: float) -> bool:
    return abs(a - b) < 1e-3


RATE = PortSpec("rate", "samples per second", ("weights", "data"), compare=close,
                explain=lambda a, b: f"off by {abs(a - b):g}")


# -- each rule alone ------------------------------------------------------------------------------


def test_modality_rule() -> None:
    s = slots(slot("data", "text"), slot("backbone"), slot("tokenizer", "imagery"))
    assert messages(modality_agrees(s, CORE_PORTS)) == [
        "[tokenizer.modality] tokenizer `tokenizer-part` has modality=imagery but data `data-part` has modality=text"]
    assert modality_agrees(slots(slot("data", "text"), slot("backbone")), CORE_PORTS) == []


def test_static_requirements_rule() -> None:
    s = slots(slot("backbone", provides={"causal": False}), slot("objective", requires={"causal": True, "grid": [1, 2]}))
    assert messages(static_requirements_hold(s, CORE_PORTS)) == [
        "[objective.causal] objective `objective-part` requires causal=true but backbone `backbone-part` provides causal=false",
        "[objective.grid] objective `objective-part` requires grid=[1, 2] but no component in this pipeline provides grid",
    ]


def test_position_modes_rule() -> None:
    s = slots(slot("positional", provides={"position_mode": "rotary"}),
              slot("backbone", provides={"position_modes": ["additive"]}))
    assert messages(position_modes_accepted(s, CORE_PORTS)) == [
        "[positional.position_mode] positional `positional-part` provides position_mode=rotary but backbone "
        "`backbone-part` accepts position_mode in [additive]"]


def test_seq_len_rule() -> None:
    s = slots(slot("data", provides={"seq_len": 65}), slot("backbone", provides={"max_positions": 64}))
    assert messages(seq_len_fits(s, CORE_PORTS)) == [
        "[data.seq_len] data `data-part` provides seq_len=65 but backbone `backbone-part` provides max_positions=64"]
    assert seq_len_fits(slots(slot("data", provides={"seq_len": 64}), slot("backbone", provides={"max_positions": 64})),
                        CORE_PORTS) == []


def test_custom_comparison_rule_uses_the_port_and_explains() -> None:
    ports = {**CORE_PORTS, "rate": RATE}
    agree = slots(slot("data", provides={"rate": 16000.0}), slot("weights", provides={"rate": 16000.0001}))
    assert custom_ports_agree(agree, ports) == []
    assert other_ports_agree(agree, ports) == []  # a port with its own compare is not checked for equality
    assert other_ports_agree(agree, CORE_PORTS) != []  # undeclared: plain equality
    differ = slots(slot("data", provides={"rate": 16000.0}), slot("weights", provides={"rate": 8000.0}))
    assert messages(custom_ports_agree(differ, ports)) == [
        "[weights.rate] weights `weights-part` provides rate=8000.0 but data `data-part` provides rate=16000.0 "
        "(off by 8000)"]


def test_other_ports_must_be_equal() -> None:
    s = slots(slot("backbone", provides={"embed_dim": 32, "max_positions": 64}),
              slot("weights", provides={"embed_dim": 48, "max_positions": 128}))
    assert messages(other_ports_agree(s, CORE_PORTS)) == [
        "[weights.embed_dim] weights `weights-part` provides embed_dim=48 but backbone `backbone-part` provides embed_dim=32"]


def test_check_contracts_runs_every_rule_in_order() -> None:
    assert [r.__name__ for r in RULES] == ["modality_agrees", "static_requirements_hold", "position_modes_accepted",
                                          "seq_len_fits", "custom_ports_agree", "other_ports_agree"]
    s = slots(slot("data", "text", provides={"seq_len": 99}), slot("tokenizer", "imagery"),
              slot("backbone", provides={"max_positions": 64}))
    assert [i.key for i in check_contracts(s)] == ["modality", "seq_len"]


# -- comparisons that fail, lazily imported ones, wiring order ---------------------------------------


def raises(a: Any, b: Any) -> bool:
    raise RuntimeError("catalog unavailable")


@pytest.mark.parametrize(
    ("compare", "fragment"),
    [(raises, "failed with RuntimeError: catalog unavailable"),
     ("no_such_module_xyz:same", "'no_such_module_xyz:same' of port 'rate' (plugin 'sound') failed with ModuleNotFoundError")],
    ids=["raises", "target-missing"],
)
def test_a_failing_compare_is_reported_against_the_slot(compare: Any, fragment: str) -> None:
    ports = {"rate": PortSpec("rate", "samples per second", compare=compare, plugin="sound")}
    s = slots(slot("data", provides={"rate": 1}), slot("weights", provides={"rate": 2}))
    (issue,) = check_contracts(s, ports)
    assert (issue.slot, issue.key) == ("weights", "rate")
    assert "weights `weights-part` provides rate=2 but data `data-part` provides rate=1, and they cannot be compared" in (
        issue.message)
    assert fragment in issue.message


def test_compare_and_explain_may_be_targets_imported_when_used() -> None:
    ports = {"rate": PortSpec("rate", "samples per second", compare="operator:eq", explain="operator:concat")}
    s = slots(slot("data", provides={"rate": "a"}), slot("weights", provides={"rate": "b"}))
    assert messages(check_contracts(s, ports)) == [
        "[weights.rate] weights `weights-part` provides rate=b but data `data-part` provides rate=a (ab)"]


@dataclass
class RateConfig:
    rate: float | None = None


def test_wire_takes_the_value_in_the_ports_order_and_compares_user_values_with_it() -> None:
    ports = {"rate": RATE}
    s = slots(slot("data", provides={"rate": 8000.0}), slot("weights", provides={"rate": 16000.0}),
              slot("head", requires={"rate": None}, config=RateConfig()))
    assert wire(s, ports) == [] and s["head"].config.rate == 16000.0 and s["head"].wired == {"rate": "weights"}
    s = slots(slot("weights", provides={"rate": 16000.0}), slot("data", provides={"rate": 8000.0}),
              slot("head", requires={"rate": None}, config=RateConfig()))
    assert wire(s) == [] and s["head"].wired == {"rate": "weights"}  # undeclared: slot order
    user = slots(slot("weights", provides={"rate": 16000.0}),
                 slot("head", requires={"rate": None}, config=RateConfig(16000.0002), rate=16000.0002))
    assert wire(user, ports) == []  # equal by the port's compare
    user["head"].config.rate, user["head"].wired = 9.0, {}
    assert "head `head-part` sets rate=9.0 but weights `weights-part` provides rate=16000.0" in messages(wire(user, ports))[0]


# -- declaring ports through the hook ----------------------------------------------------------------

PLUGIN = """
from registry_core import PortSpec, hookimpl

@hookimpl
def registry_core_ports():
    return {ports}
"""


def test_a_plugin_declares_a_port(make_dist) -> None:
    make_dist("sound", PLUGIN.format(ports='[PortSpec("rate", "samples per second", ["data"], compare="operator:eq")]'))
    ports = Registry(use_env=False).ports()
    assert ports["rate"] == PortSpec("rate", "samples per second", ("data",), compare="operator:eq", plugin="sound")
    assert ports["bands"].plugin == "gfm" and ports["embed_dim"].plugin is None
    assert list(ports)[: len(CORE_PORTS)] == list(CORE_PORTS)


def test_a_port_declared_twice_is_reported(make_dist) -> None:
    make_dist("sound", PLUGIN.format(ports='[PortSpec("rate", "samples per second")]'))
    make_dist("sound2", PLUGIN.format(ports='[PortSpec("rate", "another rate"), PortSpec("embed_dim", "mine")]'))
    reg = Registry(use_env=False)
    assert reg.ports()["rate"].plugin == "sound" and reg.ports()["embed_dim"].plugin is None
    assert "port 'rate' declared by plugin 'sound2' is ignored: plugin 'sound' already declares it" in reg.problems
    assert "port 'embed_dim' declared by plugin 'sound2' is ignored: the core already declares it" in reg.problems
    assert {p.name: p.status for p in reg.plugins()}["sound2"] == "loaded"


@pytest.mark.parametrize(
    ("ports", "fragment"),
    [("[object()]", "expected a PortSpec"),
     ('[PortSpec("sample rate", "x")]', "not a valid name"),
     ('[PortSpec("rate", "")]', "description"),
     ('[PortSpec("rate", "x", compare="not a target")]', "compare"),
     ('[PortSpec("rate", "x", explain=42)]', "explain must be a callable")],
    ids=["not-a-port-spec", "bad-name", "no-description", "bad-compare", "bad-explain"],
)
def test_a_bad_port_breaks_only_its_plugin(make_dist, ports: str, fragment: str) -> None:
    make_dist("badport", PLUGIN.format(ports=ports))
    reg = Registry(use_env=False)
    info = {p.name: p for p in reg.plugins()}
    assert info["badport"].status == "broken" and fragment in (info["badport"].error or ""), info["badport"].error
    assert "rate" not in reg.ports() and info["gfm"].status == "loaded"
