"""The registry over real entry-point discovery: loading, names, replacement, conflicts, isolation."""

from __future__ import annotations

import pytest

from registry_core import (
    ComponentLoadError,
    ConfigError,
    ConflictError,
    Registry,
)

HEADER = """
from dataclasses import dataclass
from registry_core import ComponentSpec, KindSpec, hookimpl, option

@dataclass
class ToyConfig:
    size: int = option(4, help="How big.", min=1)
    label: str = option("x", help="A label.")

class Toy:
    def __init__(self, config):
        self.config = config
"""


def plugin(specs: str, extra: str = "") -> str:
    """Source of a plugin module whose hook returns ``specs`` (a Python list expression)."""
    return HEADER + extra + f"\n@hookimpl\ndef registry_core_components():\n    return {specs}\n"


def toy(kind: str = "tokenizer", name: str = "toy", **kw: str) -> str:
    """Source of one ComponentSpec(...) call; keyword values are Python expressions."""
    kw = {"modality": '"text"', "tags": '("demo",)', "config": "ToyConfig", **kw}
    args = ", ".join(f"{k}={v}" for k, v in kw.items())
    return f'ComponentSpec("{kind}", "{name}", f"{{__name__}}:Toy", "A toy {kind}.", {args})'



def reg(**kw: object) -> Registry:
    return Registry(use_env=False, **kw)  # type: ignore[arg-type]


def test_bundled_plugins_load_through_entry_points() -> None:
    infos = {p.name: p for p in reg().plugins()}
    assert infos["llm"].status == "loaded" and infos["llm"].distribution == "registry-llm"
    assert infos["gfm"].status == "loaded" and infos["gfm"].distribution == "registry-gfm"
    assert infos["llm"].version == "0.1.0"


def test_third_party_component_is_found_with_provider(make_dist) -> None:
    make_dist("third", plugin(f"[{toy()}]"), dist_name="third-party-pkg", version="2.0.1")
    r = reg()
    spec = r.get("tokenizer", "toy")
    assert (spec.id, spec.plugin, spec.distribution, spec.version) == ("third:toy", "third", "third-party-pkg", "2.0.1")
    assert r.get("tokenizer", "third:toy") is spec
    built = r.build("tokenizer", "toy", size=7)
    assert built.config.size == 7 and built.config.label == "x"


def test_plugin_declares_a_new_kind(make_dist) -> None:
    extra = '\n@hookimpl\ndef registry_core_kinds():\n    return [KindSpec("sampler", "Draws samples.")]\n'
    make_dist("kinds", plugin(f"[{toy('sampler', 'uniform')}]", extra))
    r = reg()
    assert r.kinds()["sampler"].plugin == "kinds"
    assert [s.id for s in r.list(kind="sampler")] == ["kinds:uniform"]


def test_replacement_wins_by_short_name_and_replaced_stays_reachable(make_dist) -> None:
    make_dist("base", plugin(f"[{toy()}]"))
    make_dist("better", plugin(f"[{toy(name='fasttoy', replaces=repr('base:toy'))}]"))
    r = reg()
    assert r.get("tokenizer", "toy").id == "better:fasttoy"
    assert r.get("tokenizer", "base:toy").plugin == "base"
    old = r.get("tokenizer", "base:toy")
    assert r.status(old) == "replaced" and r.replaced_by(old) == "better:fasttoy"
    assert r.describe(old)["replaced_by"] == "better:fasttoy"
    assert r.describe(r.get("tokenizer", "toy"))["replaces"] == "base:toy"


def test_replacing_a_bundled_component(make_dist) -> None:
    bundled = reg().list(kind="tokenizer", pattern="bpe")
    assert bundled, "the llm plugin registers tokenizer bpe"
    make_dist("mybpe", plugin(f"[{toy(name='bpe', replaces=repr('llm:bpe'))}]"))
    r = reg()
    assert r.get("tokenizer", "bpe").id == "mybpe:bpe"
    assert r.get("tokenizer", "llm:bpe").plugin == "llm"
    assert r.status(r.get("tokenizer", "llm:bpe")) == "replaced"


def test_replacing_something_missing_is_reported(make_dist) -> None:
    make_dist("orphan", plugin(f"[{toy(replaces=repr('nowhere:toy'))}]"))
    r = reg()
    assert any("nowhere:toy" in p and "orphan:toy" in p for p in r.problems)
    assert r.get("tokenizer", "toy").id == "orphan:toy"


def test_conflict_names_both_providers_until_one_replaces(make_dist) -> None:
    make_dist("one", plugin(f"[{toy()}]"), dist_name="pkg-one")
    make_dist("two", plugin(f"[{toy()}]"), dist_name="pkg-two")
    r = reg()
    with pytest.raises(ConflictError) as err:
        r.get("tokenizer", "toy")
    msg = str(err.value)
    assert "one:toy" in msg and "two:toy" in msg and "pkg-one" in msg and "pkg-two" in msg
    assert {r.status(s) for s in r.list(pattern="toy")} == {"conflict"}
    assert r.get("tokenizer", "two:toy").plugin == "two"
    assert list(r.conflicts()) == [("tokenizer", "toy")]


def test_same_name_in_two_kinds_is_not_a_conflict(make_dist) -> None:
    make_dist("multi", plugin(f"[{toy('tokenizer', 'same')}, {toy('backbone', 'same')}]"))
    r = reg()
    assert r.get("tokenizer", "same").kind == "tokenizer"
    assert r.get("backbone", "same").kind == "backbone"


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("import definitely_not_a_module_xyz\n" + plugin("[]"), "definitely_not_a_module_xyz"),
        (plugin("[]").replace("    return []", "    raise RuntimeError('boom in hook')"), "boom in hook"),
        (plugin(f"[{toy()}]").replace('"A toy tokenizer."', '""'), "summary"),
        (plugin(f"[{toy()}]").replace('f"{__name__}:Toy"', '"no colon here"'), "target"),
        (plugin(f"[{toy('tokeniser')}]"), "did you mean 'tokenizer'"),
        (plugin(f"[{toy()}, {toy()}]"), "registered twice"),
        (plugin("[object()]"), "expected a ComponentSpec"),
        (plugin(f"[{toy(modality=repr('audio'))}]"), "modality"),
        (plugin("[]") + "\n@hookimpl\ndef registry_core_unknown_thing():\n    return 1\n", "registry_core_unknown_thing"),
        (plugin("[]") + "\n@hookimpl\ndef registry_core_build_component(spec, config, extra):\n    return 1\n", "extra"),
    ],
    ids=["import-error", "hook-raises", "missing-summary", "bad-target", "unknown-kind", "duplicate",
         "not-a-spec", "bad-modality", "unknown-hook", "bad-hook-arguments"],
)
def test_broken_plugin_is_isolated(make_dist, source: str, fragment: str) -> None:
    make_dist("bad", source)
    make_dist("good", plugin(f"[{toy('backbone', 'fine')}]"))
    r = reg()
    info = {p.name: p for p in r.plugins()}
    assert info["bad"].status == "broken"
    assert fragment in (info["bad"].error or ""), info["bad"].error
    assert info["bad"].traceback
    assert info["bad"].components == 0 and not any(s.plugin == "bad" for s in r.list())
    assert info["good"].status == "loaded" and r.get("backbone", "fine").plugin == "good"
    assert info["llm"].status == "loaded"


def test_target_import_failure_raises_component_load_error(make_dist) -> None:
    src = plugin('[ComponentSpec("backbone", "ghost", "no_such_module_abc.deep:Thing", "Missing target.")]')
    make_dist("ghosts", src)
    r = reg()
    with pytest.raises(ComponentLoadError) as err:
        r.build("backbone", "ghost")
    msg = str(err.value)
    assert "ghosts:ghost" in msg and "'ghosts'" in msg and "no_such_module_abc.deep:Thing" in msg
    assert isinstance(err.value.__cause__, ModuleNotFoundError)


def test_build_validates_options_before_importing(make_dist) -> None:
    make_dist("opts", plugin(f"[{toy()}]"))
    r = reg()
    with pytest.raises(ConfigError) as err:
        r.build("tokenizer", "toy", sise=3, label=5)
    text = str(err.value)
    assert "did you mean 'size'" in text and "label" in text and "expected a string" in text
    with pytest.raises(ConfigError, match="must be >= 1"):
        r.build("tokenizer", "toy", size=0)


def test_build_hook_wrapper_observes_builds(make_dist) -> None:
    extra = """
SEEN = []

@hookimpl(wrapper=True)
def registry_core_build_component(spec, config):
    result = yield
    SEEN.append((spec.id, type(result).__name__))
    return result
"""
    watcher = make_dist("watch", plugin("[]", extra))
    make_dist("src", plugin(f"[{toy()}]"))
    r = reg()
    r.build("tokenizer", "toy")
    import importlib

    assert importlib.import_module(watcher.module).SEEN == [("src:toy", "Toy")]


def test_unknown_names_suggest_close_matches(make_dist) -> None:
    make_dist("names", plugin(f"[{toy(name='patch-embed')}]"))
    r = reg()
    with pytest.raises(LookupError, match="did you mean 'patch-embed'"):
        r.get("tokenizer", "patch-embd")
    with pytest.raises(LookupError, match="did you mean 'backbone'"):
        r.get("backbones", "x")
    with pytest.raises(LookupError, match="did you mean 'names:patch-embed'"):
        r.get("tokenizer", "names:patch-emb")


def test_list_filters_and_natural_sort(make_dist) -> None:
    specs = ", ".join(toy("backbone", n) for n in ("vit-10", "vit-2", "gpt"))
    specs += ", " + toy("backbone", "img", modality=repr("imagery"), tags=repr(("vision", "demo")))
    make_dist("sorty", plugin(f"[{specs}]"))
    r = reg()
    mine = [s for s in r.list(kind="backbone") if s.plugin == "sorty"]
    assert [s.name for s in mine] == ["gpt", "img", "vit-2", "vit-10"]
    assert [s.name for s in r.list(pattern="vit-*") if s.plugin == "sorty"] == ["vit-2", "vit-10"]
    assert [s.name for s in r.list(pattern="sorty:g*")] == ["gpt"]
    assert [s.name for s in r.list(modality="imagery") if s.plugin == "sorty"] == ["img"]
    assert [s.name for s in r.list(tags=["vision"])] == ["img"]


def test_autoload_off_and_explicit_plugins(make_dist, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = make_dist("extra", plugin(f"[{toy(modality=repr('any'))}]"))  # 'text' needs registry-llm
    assert Registry(autoload=False, use_env=False).plugins() == []
    by_ep = Registry(autoload=False, plugins=["extra"], use_env=False)
    assert [p.name for p in by_ep.plugins()] == ["extra"]
    by_module = Registry(autoload=False, plugins=[dist.module], use_env=False)
    assert by_module.get("tokenizer", "toy").plugin == dist.module

    monkeypatch.setenv("REGISTRY_CORE_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("REGISTRY_CORE_PLUGINS", "extra, llm")
    assert sorted(p.name for p in Registry().plugins()) == ["extra", "llm"]


def test_blocking(make_dist, monkeypatch: pytest.MonkeyPatch) -> None:
    make_dist("blockme", plugin(f"[{toy()}]"))
    r = Registry(blocked=["blockme"], use_env=False)
    assert {p.name: p.status for p in r.plugins()}["blockme"] == "blocked"
    with pytest.raises(LookupError, match="not loaded: blockme"):
        r.get("tokenizer", "toy")
    monkeypatch.setenv("REGISTRY_CORE_BLOCK", "blockme,gfm")
    statuses = {p.name: p.status for p in Registry().plugins()}
    assert statuses["blockme"] == statuses["gfm"] == "blocked" and statuses["llm"] == "loaded"


def test_duplicate_entry_point_names_across_distributions(make_dist) -> None:
    make_dist("twin", plugin(f"[{toy()}]"), dist_name="twin-a")
    make_dist("twin", plugin(f"[{toy('backbone')}]"), dist_name="twin-b")
    r = reg()
    infos = [p for p in r.plugins() if p.name == "twin"]
    assert len(infos) == 1 and infos[0].status == "loaded"
    assert any("'twin'" in p and "twin-a" in p and "twin-b" in p for p in r.problems)


def test_modalities_come_from_plugins(make_dist) -> None:
    extra = '\nfrom registry_core import ModalitySpec\n\n@hookimpl\ndef registry_core_modalities():\n' \
            '    return [ModalitySpec("audio", "Sound."), ModalitySpec("text", "Text, again.")]\n'
    make_dist("sound", plugin(f"[{toy('data_source', 'wav', modality=repr('audio'))}]", extra))
    r = reg()
    assert {n: m.plugin for n, m in r.modalities().items()} == {"any": None, "imagery": "gfm", "text": "llm", "audio": "sound"}
    assert [s.id for s in r.list(modality="audio") if s.plugin == "sound"] == ["sound:wav"]
    assert r.problems == []  # declaring a modality another plugin declares too is fine
    without_llm = Registry(blocked=["llm", "gfm"], use_env=False)
    assert without_llm.modalities()["text"].plugin == "sound"  # the text components of others still load


def test_a_modality_nobody_declares_breaks_the_plugin(make_dist) -> None:
    make_dist("typo", plugin(f"[{toy(modality=repr('imagry'))}]"))
    info = {p.name: p for p in reg().plugins()}["typo"]
    assert info.status == "broken"
    assert "modality 'imagry' is not one of any, imagery, text; did you mean 'imagery'?" in (info.error or "")


def test_a_modality_names_its_server_and_a_malformed_one_breaks_the_plugin(make_dist) -> None:
    extra = '\nfrom registry_core import ModalitySpec\n\n@hookimpl\ndef registry_core_modalities():\n' \
            '    return [ModalitySpec("audio", "Sound.", server="not a target")]\n'
    make_dist("loud", plugin("[]", extra))
    r = reg()
    info = {p.name: p for p in r.plugins()}["loud"]
    assert info.status == "broken" and "modality 'audio': server: target 'not a target'" in (info.error or "")
    assert {n: m.plugin for n, m in r.servers().items()} == {"imagery": "gfm", "text": "llm"}
    assert r.servers()["text"].server == "registry_llm.serve.command:text_server"
