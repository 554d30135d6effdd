"""Config schemas: type checks, conversions, bounds, required fields, nearest-key hints, descriptions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from registry_core import ComponentSpec, ConfigError, Registry, describe_fields, option
from registry_core._schema import build_config, validate_options


@dataclass
class Inner:
    depth: int = option(2, help="Layers.", min=1)


@dataclass
class Cfg:
    vocab_size: int = option(help="Vocabulary size.", min=256)
    dropout: float = option(0.0, help="Dropout.", min=0.0, max=1.0)
    bias: bool = option(True, help="Use biases.")
    act: Literal["gelu", "relu"] = option("gelu", help="Activation.")
    bands: tuple[str, ...] = option((), help="Band names in order.")
    paths: list[str] = option(["*.txt"], help="Globs.")
    out: Path | None = option(None, help="Output folder.")
    embed_dim: int | None = option(None, help="Width; wired from the backbone.", wired="embed_dim")
    inner: Inner = option(Inner(), help="Nested table.")
    mode: str = option("a", help="Mode.", choices=("a", "b"))


def check(**options: object) -> tuple[object, list[str]]:
    obj, issues = validate_options(Cfg, options, slot="tokenizer")
    return obj, [str(i) for i in issues]


def test_valid_options_are_converted() -> None:
    obj, issues = check(vocab_size=512, dropout=0, bands=["B02", "B03"], out="runs/x", inner={"depth": 4})
    assert issues == []
    assert isinstance(obj, Cfg)
    assert obj.dropout == 0.0 and isinstance(obj.dropout, float)
    assert obj.bands == ("B02", "B03") and obj.out == Path("runs/x") and obj.inner == Inner(4)
    assert obj.paths == ["*.txt"] and obj.paths is not Cfg(vocab_size=300).paths


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"vocab_size": "512"}, "[tokenizer.vocab_size] expected an int, got str '512'"),
        ({"vocab_size": True}, "expected an int, got bool"),
        ({"vocab_size": 512, "bias": 1}, "expected a bool"),
        ({"vocab_size": 100}, "must be >= 256, got 100"),
        ({"vocab_size": 512, "dropout": 1.5}, "must be <= 1.0"),
        ({"vocab_size": 512, "act": "swish"}, "expected one of 'gelu', 'relu'"),
        ({"vocab_size": 512, "bands": "B02"}, "expected a list"),
        ({"vocab_size": 512, "bands": ["B02", 3]}, "expected a string"),
        ({"vocab_size": 512, "mode": "c"}, "must be one of 'a', 'b'"),
        ({"vocab_size": 512, "inner": {"depht": 3}}, "depht"),
        ({"vocab_size": 512, "vocab_sise": 3}, "[tokenizer.vocab_sise] unknown option 'vocab_sise'; did you mean 'vocab_size'?"),
        ({}, "required option 'vocab_size' is missing"),
    ],
)
def test_each_bad_option_is_named(options: dict[str, object], fragment: str) -> None:
    obj, issues = check(**options)
    assert obj is None
    assert any(fragment in i for i in issues), issues


def test_all_errors_are_reported_together() -> None:
    _, issues = check(vocab_size="x", dropout=-1, colour="red")
    assert len(issues) == 3


def test_describe_fields_for_show() -> None:
    fields = {f.name: f for f in describe_fields(Cfg)}
    assert fields["vocab_size"].required and fields["vocab_size"].min == 256
    assert fields["out"].type == "Path | None"
    assert fields["bands"].type == "tuple[str, ...]"
    assert fields["embed_dim"].wired == "embed_dim"
    assert fields["act"].type == "'gelu' | 'relu'"
    assert all(f.help for f in fields.values())


def test_build_config_by_string_reference_and_errors() -> None:
    spec = ComponentSpec("tokenizer", "t", "m:x", "T.", config="tests_missing_mod_q:Cfg")
    with pytest.raises(ModuleNotFoundError):
        build_config(spec, {})
    plain = ComponentSpec("tokenizer", "t", "m:x", "T.")
    assert build_config(plain, {}) is None
    with pytest.raises(ConfigError, match="takes no options"):
        build_config(plain, {"a": 1})


def test_config_error_lists_slots() -> None:
    spec = ComponentSpec("tokenizer", "t", "m:x", "T.", config=Cfg)
    with pytest.raises(ConfigError) as err:
        build_config(spec, {"vocab_size": 1}, slot="tokenizer")
    assert err.value.slots == ["tokenizer"]
    assert str(err.value).startswith("1 config error:")


LOADER_PLUGIN = """
from registry_core import ComponentSpec, hookimpl

@hookimpl
def registry_core_components():
    return [ComponentSpec("stac_loader", "my-loader", "nowhere_xyz:build", "A loader only this registry has.")]
"""


def test_a_ref_option_is_checked_against_the_registry_that_validates(make_dist) -> None:
    from registry_core import get_registry
    from registry_gfm.ingest.specs import StacZarrConfig

    process_wide = get_registry()
    make_dist("loaders", LOADER_PLUGIN)
    reg = Registry(use_env=False)
    options = {"catalog": "catalog.json", "assets": ["red"], "loader": "my-loader"}
    with pytest.raises(ConfigError, match=r"\[data_source gfm:stac-zarr\.loader\] no stac_loader named 'my-loader'") as err:
        process_wide.config("data_source", "stac-zarr", **options)
    assert err.value.issues[0].key == "loader"
    assert reg.config("data_source", "stac-zarr", **options).loader == "my-loader"
    config, issues = validate_options(StacZarrConfig, options, "data", registry=reg)
    assert issues == [] and config.loader == "my-loader"
    _, issues = validate_options(StacZarrConfig, {**options, "loader": "stackstak"}, "data", registry=reg)
    assert [(i.key, i.message.split(";")[0]) for i in issues] == [("loader", "no stac_loader named 'stackstak'")]
    assert "stackstac" in issues[0].message  # the close match


@dataclass
class Picks:
    names: list[str] = option([], help="positional encoders", ref="positional_encoder")


def test_each_name_of_a_ref_list_is_checked_and_none_without_a_registry() -> None:
    from registry_core import get_registry

    reg = get_registry()
    config, issues = validate_options(Picks, {"names": ["rope", "alibi"]}, "x", registry=reg)
    assert issues == [] and config.names == ["rope", "alibi"]
    _, issues = validate_options(Picks, {"names": ["rope", "ropee"]}, "x", registry=reg)
    assert [i.key for i in issues] == ["names"] and "'ropee'" in issues[0].message
    config, issues = validate_options(Picks, {"names": ["ropee"]}, "x")  # no registry given: not checked
    assert issues == [] and config.names == ["ropee"]
