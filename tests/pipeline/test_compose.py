"""Composition: resolving, validating, wiring and contract checks, before any component code runs."""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest

from registry_core import ConfigError, Registry, compose


def issues_of(config: dict[str, Any], registry: Registry) -> list[str]:
    with pytest.raises(ConfigError) as err:
        compose(config, registry)
    return [str(i) for i in err.value.issues]


def test_good_config_composes_and_wires(toy_registry: Registry, good: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "rc_toy_parts", raising=False)  # an earlier test in this process built it
    p = compose(good, toy_registry)
    assert p.slots["positional"].config.embed_dim == 32
    assert p.slots["positional"].config.max_positions == 64
    assert p.slots["positional"].wired == {"embed_dim": "backbone", "max_positions": "backbone"}
    assert p.slots["objective"].config.vocab_size == 16 and p.slots["objective"].wired["vocab_size"] == "tokenizer"
    rows = {r["slot"]: r for r in p.describe()}
    assert rows["tokenizer"]["id"] == "toy:toy-tok" and rows["tokenizer"]["provider"] == "rc-toy 0.3.0"
    assert rows["objective"]["wired"]["embed_dim"] == (32, "backbone")
    assert "rc_toy_parts" not in sys.modules  # nothing was built


def test_round_trip_through_config_and_toml(toy_registry: Registry, good: dict, tmp_path) -> None:
    p = compose(good, toy_registry)
    again = compose(p.to_config(), toy_registry)
    assert again == p and again.to_config() == p.to_config()
    path = tmp_path / "pipeline.toml"
    path.write_text(p.to_toml())
    from registry_core import Pipeline

    assert Pipeline.from_toml(path, toy_registry) == p


def test_overrides(toy_registry: Registry, good: dict, tmp_path) -> None:
    from registry_core import Pipeline
    from registry_core.pipeline._toml import dumps

    path = tmp_path / "p.toml"
    path.write_text(dumps(good))
    p = Pipeline.from_toml(path, toy_registry, overrides=["backbone.embed_dim=48", "train.steps=3", "data.use=toy-text"])
    assert p.slots["backbone"].config.embed_dim == 48 and p.slots["objective"].config.embed_dim == 48
    assert p.train.steps == 3
    with pytest.raises(ConfigError, match=r"slot\.key=value"):
        Pipeline.from_toml(path, toy_registry, overrides=["steps"])


def test_validation_errors_are_reported_together(toy_registry: Registry, good: dict) -> None:
    bad = copy.deepcopy(good)
    bad["backbone"]["embed_dimm"] = 32
    bad["data"]["seq_len"] = "long"
    bad["tokenizer"]["use"] = "toy-tk"
    bad["train"]["lr"] = -1.0
    bad["trian"] = {}
    text = "\n".join(issues_of(bad, toy_registry))
    assert "[backbone.embed_dimm] unknown option 'embed_dimm'; did you mean 'embed_dim'?" in text
    assert "[data.seq_len] expected an int, got str 'long'" in text
    assert "[tokenizer.use] no tokenizer named 'toy-tk'; did you mean 'toy-tok'" in text
    assert "[train.lr] must be >= 0.0" in text
    assert "[trian] unknown pipeline key 'trian'; did you mean 'train'?" in text


def test_missing_slot_and_bad_shapes(toy_registry: Registry) -> None:
    text = "\n".join(issues_of({"data": "toy-text", "tokenizer": {}, "evaluators": {"use": "x"}}, toy_registry))
    assert "[data] expected a table" in text
    assert "[tokenizer.use] missing 'use" in text
    assert "[backbone] the pipeline needs a [backbone] table" in text
    assert "[evaluators] expected an array of tables" in text


# --- contract rules: each failing config names both components and both values --------------------


def with_(good: dict, **slots: dict) -> dict:
    cfg = copy.deepcopy(good)
    for slot, table in slots.items():
        cfg[slot] = table
    return cfg


CONTRACTS = {
    "modality": (
        {"data": {"use": "toy-image"}},
        "tokenizer `toy-tok` has modality=text but data `toy-image` has modality=imagery",
    ),
    "tokens": (
        {"tokenizer": {"use": "toy-patch", "bands": ["B02"]}, "data": {"use": "toy-image", "bands": ["B02"]}},
        "objective `toy-next` requires tokens=discrete but tokenizer `toy-patch` provides tokens=continuous",
    ),
    "causal": (
        {"backbone": {"use": "toy-encoder"}},
        "objective `toy-next` requires causal=true but backbone `toy-encoder` provides causal=false",
    ),
    "position_mode": (
        {"positional": {"use": "toy-rotary"}},
        "positional `toy-rotary` provides position_mode=rotary but backbone `toy-decoder` accepts position_mode in [additive]",
    ),
    "grid": (
        {"positional": {"use": "toy-2d"}},
        "positional `toy-2d` provides grid=2 but tokenizer `toy-tok` provides grid=1",
    ),
    "supports_masking": (
        {"backbone": {"use": "toy-encoder"}, "objective": {"use": "toy-mae"}},
        "objective `toy-mae` requires supports_masking=true but no component in this pipeline provides supports_masking",
    ),
    "vocab_size": (
        {"objective": {"use": "toy-next", "vocab_size": 99}},
        "objective `toy-next` sets vocab_size=99 but tokenizer `toy-tok` provides vocab_size=16",
    ),
    "seq_len": (
        {"data": {"use": "toy-text", "seq_len": 100}},
        "data `toy-text` provides seq_len=100 but backbone `toy-decoder` provides max_positions=64",
    ),
    "embed_dim": (
        {"weights": {"use": "toy-weights", "embed_dim": 48, "bands": []}},
        "weights `toy-weights` provides embed_dim=48 but backbone `toy-decoder` provides embed_dim=32",
    ),
}


@pytest.mark.parametrize("rule", list(CONTRACTS))
def test_contract_violation_names_both_sides(toy_registry: Registry, good: dict, rule: str) -> None:
    change, message = CONTRACTS[rule]
    text = "\n".join(issues_of(with_(good, **change), toy_registry))
    assert message in text


def test_band_order_mismatch_explains_itself(toy_registry: Registry, good: dict) -> None:
    cfg = with_(
        good,
        data={"use": "toy-image", "bands": ["B02", "B03", "B04"]},
        tokenizer={"use": "toy-patch", "bands": ["B04", "B03", "B02"]},
    )
    text = "\n".join(issues_of(cfg, toy_registry))
    assert "tokenizer `toy-patch` sets bands=[B04, B03, B02] but data `toy-image` provides bands=[B02, B03, B04]" in text
    cfg["tokenizer"].pop("bands")
    cfg["weights"] = {"use": "toy-weights", "bands": ["B02", "B04", "B03"]}
    text = "\n".join(issues_of(cfg, toy_registry))
    assert "weights `toy-weights` provides bands=[B02, B04, B03] but data `toy-image` provides bands=[B02, B03, B04]" in text
    assert "position 1 is B03 vs B04" in text


def test_bands_match_by_identity_from_the_plugins_band_catalog(toy_registry: Registry, good: dict) -> None:
    # registry-gfm declares the bands port and compares by its catalog: B8A, B08A and nir08 are one band
    assert toy_registry.ports()["bands"].plugin == "gfm"
    base = with_(good, data={"use": "toy-image", "bands": ["B8A", "B12", "coastal"]},
                 tokenizer={"use": "toy-patch", "bands": ["nir08", "swir22", "coastal"]}, positional={"use": "toy-2d"},
                 backbone={"use": "toy-encoder"}, objective={"use": "toy-mae"})
    base["weights"] = {"use": "toy-weights", "embed_dim": 32, "bands": ["B08A", "B12", "coastal"]}
    text = "\n".join(issues_of(base, toy_registry))
    assert "bands" not in text  # aliases of the same bands, same order: no issue (only masking fails)

    reordered = with_(base, weights={"use": "toy-weights", "embed_dim": 32, "bands": ["nir08", "coastal", "B12"]})
    text = "\n".join(issues_of(reordered, toy_registry))
    assert "(same bands in another order: position 1 is B12 (swir22) vs coastal)" in text
    other = with_(base, weights={"use": "toy-weights", "embed_dim": 32, "bands": ["B8A", "B12", "nir"]})
    text = "\n".join(issues_of(other, toy_registry))
    assert "(missing [coastal]; unexpected [nir])" in text
    repeated = with_(base, weights={"use": "toy-weights", "embed_dim": 32, "bands": ["B8A", "B12", "coastal", "nir08"]})
    assert "(3 bands vs 4: a band is repeated)" in "\n".join(issues_of(repeated, toy_registry))
    wrong_user = with_(base, tokenizer={"use": "toy-patch", "bands": ["B12", "B8A", "coastal"]})
    assert "tokenizer `toy-patch` sets bands=[B12, B8A, coastal] but data `toy-image` provides bands=[B8A, B12, coastal]" in (
        "\n".join(issues_of(wrong_user, toy_registry)))


def test_without_the_imagery_plugin_bands_compare_as_written(toy_registry: Registry, good: dict) -> None:
    plain = Registry(blocked=["gfm"], use_env=False)
    assert "bands" not in plain.ports()
    cfg = with_(good, data={"use": "toy-image", "bands": ["B8A"]}, tokenizer={"use": "toy-patch"},
                positional={"use": "toy-2d"}, backbone={"use": "toy-encoder"}, objective={"use": "toy-mae"})
    cfg["weights"] = {"use": "toy-weights", "embed_dim": 32, "bands": ["nir08"]}
    assert "weights `toy-weights` provides bands=[nir08] but data `toy-image` provides bands=[B8A]" in (
        "\n".join(issues_of(cfg, plain)))
    assert "bands" not in "\n".join(issues_of(cfg, toy_registry))


def test_wired_bands_flow_from_data(toy_registry: Registry, good: dict) -> None:
    cfg = with_(good, data={"use": "toy-image", "bands": ["B02", "B03"]}, tokenizer={"use": "toy-patch"},
                positional={"use": "toy-2d"}, backbone={"use": "toy-encoder"}, objective={"use": "toy-mae"})
    text = "\n".join(issues_of(cfg, toy_registry))  # only the masking rule fails: bands were wired
    assert "supports_masking" in text and "bands" not in text


BANDS_PLUGIN = '''
from registry_core import PortSpec, hookimpl

ALIASES = {"b2": "B02", "b3": "B03", "b4": "B04"}

def same(a, b):
    if "broken" in a or "broken" in b:
        raise RuntimeError("catalog unavailable")
    return [ALIASES.get(x, x) for x in a] == [ALIASES.get(x, x) for x in b]

@hookimpl
def registry_core_ports():
    return [PortSpec("bands", "ordered band names, by the toy catalog", ("data", "weights"), compare=same,
                     explain=lambda a, b: "another toy band list")]
'''


def test_another_plugin_may_bring_its_own_bands_port(toy_registry: Registry, good: dict, make_dist) -> None:
    make_dist("toybands", BANDS_PLUGIN)
    reg = Registry(blocked=["gfm"], use_env=False)
    assert reg.ports()["bands"].plugin == "toybands"
    cfg = with_(good, data={"use": "toy-image", "bands": ["B02", "B03"]}, tokenizer={"use": "toy-patch"},
                positional={"use": "toy-2d"}, backbone={"use": "toy-encoder"}, objective={"use": "toy-mae"})
    cfg["weights"] = {"use": "toy-weights", "embed_dim": 32, "bands": ["b2", "b3"]}
    assert "bands" not in "\n".join(issues_of(cfg, reg))
    cfg["weights"]["bands"] = ["b3", "b2"]
    assert ("weights `toy-weights` provides bands=[b3, b2] but data `toy-image` provides bands=[B02, B03] "
            "(another toy band list)") in "\n".join(issues_of(cfg, reg))
    cfg["weights"]["bands"] = ["broken"]
    text = "\n".join(issues_of(cfg, reg))  # the plugin's compare raised: an issue of the slot, not a crash
    assert "[weights.bands] weights `toy-weights` provides bands=[broken] but data `toy-image` provides bands=[B02, B03], " \
           "and they cannot be compared: the compare function of port 'bands' (plugin 'toybands') failed with " \
           "RuntimeError: catalog unavailable" in text
