"""The stand-alone imagery plugin (examples/thirdparty-plugin), found through its real entry point."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from registry_core import ConfigError, Pipeline, Registry
from registry_core.testing import assert_plugin_ok

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "examples" / "thirdparty-plugin"


@pytest.fixture
def geoextras(install_example: Callable[[Path], None]) -> Registry:
    """The example installed as pip would list it (its real entry points)."""
    install_example(PACKAGE)
    return Registry(use_env=False)


def test_thirdparty_plugin_passes_the_author_kit(geoextras: Registry) -> None:
    assert_plugin_ok("geoextras", geoextras)
    spec = geoextras.get("positional_encoder", "rope-2d")
    assert (spec.id, spec.distribution, spec.version) == ("geoextras:rope-2d", "registry-geoextras", "0.1.0")


def test_its_patch_replaces_the_bundled_one(geoextras: Registry) -> None:
    assert geoextras.get("tokenizer", "patch").id == "geoextras:patch"
    bundled = geoextras.get("tokenizer", "gfm:patch")
    assert geoextras.replaced_by(bundled) == "geoextras:patch"
    assert geoextras.get("tokenizer", "geoextras:patch").provides == bundled.provides  # the same ports


def test_its_kind_is_declared_with_an_interface(geoextras: Registry) -> None:
    kind = geoextras.kinds()["spectral_index"]
    assert kind.interface == "registry_geoextras.interfaces:SpectralIndex"
    assert [s.id for s in geoextras.list(kind="spectral_index")] == ["geoextras:ndvi"]


def test_its_pipeline_composes(geoextras: Registry) -> None:
    p = Pipeline.from_toml(PACKAGE / "pipeline.toml", geoextras)
    ids = {slot: s.spec.id for slot, s in p.slots.items()}
    assert ids["tokenizer"] == "geoextras:patch" and ids["positional"] == "geoextras:rope-2d"
    assert ids["backbone"] == "gfm:vit" and ids["objective"] == "gfm:mae"
    assert p.slots["tokenizer"].config.indices == ["ndvi"]
    assert (p.slots["positional"].config.embed_dim, p.slots["positional"].config.heads) == (64, 4)  # wired


def test_recipes_still_compose_with_the_replacement(geoextras: Registry) -> None:
    p = Pipeline.from_toml(ROOT / "examples" / "mae-tiny.toml", geoextras)
    assert p.slots["tokenizer"].spec.id == "geoextras:patch" and p.slots["tokenizer"].config.patch_size == 4


def test_an_unknown_spectral_index_names_the_option(geoextras: Registry) -> None:
    with pytest.raises(ConfigError, match=r"\[tokenizer\.indices\] no spectral_index named 'nvdi'; did you mean 'ndvi'"):
        Pipeline.from_toml(PACKAGE / "pipeline.toml", geoextras, overrides=['tokenizer.indices=["nvdi"]'])


def test_a_wired_value_meets_the_components_own_checks(geoextras: Registry) -> None:
    # 64 / 32 heads leaves rope-2d a head_dim of 2, which it cannot split into row and column halves;
    # the heads reach it by wiring, after its options were validated, so composition checks it again
    with pytest.raises(ConfigError) as info:
        Pipeline.from_toml(PACKAGE / "pipeline.toml", geoextras, overrides=["backbone.heads=32"])
    assert any(i.slot == "positional" and "head_dim" in i.message for i in info.value.issues), info.value
