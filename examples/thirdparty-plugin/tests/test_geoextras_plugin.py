"""The plugin as a user meets it: the author kit passes, `patch` is replaced, the new kind is listed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from registry_core import ConfigError, Registry, compose
from registry_core.testing import assert_plugin_ok

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True, check=False)


def test_the_author_kit_passes(registry: Registry) -> None:
    assert_plugin_ok("geoextras", registry)


def test_patch_is_replaced_and_list_and_show_say_so(registry: Registry) -> None:
    assert registry.get("tokenizer", "patch").id == "geoextras:patch"
    assert registry.replaced_by(registry.get("tokenizer", "gfm:patch")) == "geoextras:patch"
    listed = {r["id"]: r for r in json.loads(cli("list", "--kind", "tokenizer", "--json").stdout)}
    assert listed["geoextras:patch"]["replaces"] == "gfm:patch"
    assert listed["gfm:patch"]["replaced_by"] == "geoextras:patch"
    assert "replaces:    gfm:patch" in cli("show", "tokenizer", "patch").stdout
    assert "replaced by: geoextras:patch" in cli("show", "tokenizer", "gfm:patch").stdout


def test_the_spectral_index_kind_is_declared_and_listed(registry: Registry) -> None:
    assert registry.kinds()["spectral_index"].interface == "registry_geoextras.interfaces:SpectralIndex"
    assert [s.id for s in registry.list(kind="spectral_index")] == ["geoextras:ndvi"]
    assert "geoextras:ndvi" in cli("list", "--kind", "spectral_index").stdout


def _config(**tokenizer: object) -> dict[str, object]:
    return {"data": {"use": "zarr-chips", "store": "x.zarr", "chip_size": 16, "bands": BANDS},
            "tokenizer": {"use": "patch", "patch_size": 4, **tokenizer},
            "positional": {"use": "rope-2d"},
            "backbone": {"use": "vit", "embed_dim": 32, "depth": 1, "heads": 2},
            "objective": {"use": "mae", "decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2}}


def test_an_unknown_index_is_a_config_error_naming_the_option(registry: Registry) -> None:
    with pytest.raises(ConfigError, match=r"\[tokenizer\.indices\] no spectral_index named 'ndwi'"):
        compose(_config(indices=["ndwi"]), registry)


def test_indices_and_band_groups_do_not_combine(registry: Registry) -> None:
    with pytest.raises(ConfigError, match="'indices' and 'band_groups' do not combine"):
        compose(_config(indices=["ndvi"], band_groups=[BANDS[:3], BANDS[3:]]), registry)


def test_rope_2d_needs_a_head_dim_divisible_by_4(registry: Registry) -> None:
    with pytest.raises(ConfigError, match="head_dim divisible by 4"):
        registry.build("positional_encoder", "rope-2d", embed_dim=36, heads=6)  # head_dim 6
