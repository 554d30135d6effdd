"""The plugin author kit on the bundled plugins and on a plugin with problems."""

from __future__ import annotations

import pytest

from registry_core import Registry
from registry_core.testing import assert_plugin_ok, check_plugin


@pytest.mark.parametrize("name", ["llm", "gfm"])
def test_bundled_plugins_pass_the_kit(name: str) -> None:
    assert_plugin_ok(name)


def test_kit_reports_each_problem(make_dist) -> None:
    src = """
import json  # light
import email.mime.text
from dataclasses import dataclass, field
from registry_core import ComponentSpec, hookimpl, option

@dataclass
class Cfg:
    size: int = option(help="Required: fine, the user must give it.")
    ratio: float = option(2.0, help="A default outside its own bounds.", max=1.0)
    undocumented: int = 3

@hookimpl
def registry_core_components():
    return [ComponentSpec("backbone", "bad-target", "no_such_mod_kit:X", "Missing.", config=Cfg)]
"""
    make_dist("kitbad", src)
    problems = check_plugin("kitbad", Registry(use_env=False), check_imports=False)
    text = "\n".join(problems)
    assert "no_such_mod_kit:X" in text
    assert "must be <= 1.0, got 2.0" in text and "'size'" not in text
    assert "'undocumented' has no help text" in text
    assert check_plugin("not-installed-xyz", Registry(use_env=False)) == [
        "plugin 'not-installed-xyz' is not installed (known: gfm, kitbad, llm)"
    ]


def test_kit_flags_heavy_imports(make_dist) -> None:
    make_dist("kitheavy", "import numpy\nfrom registry_core import hookimpl\n")
    problems = check_plugin("kitheavy", Registry(use_env=False))
    assert any("numpy" in p for p in problems)


def test_kit_builds_components_with_their_defaults_and_checks_members(make_dist) -> None:
    src = """
from dataclasses import dataclass
from registry_core import ComponentSpec, hookimpl, option

class HalfTokenizer:  # encodes, but has no model half
    tokens = "discrete"

    def encode(self, text):
        return [ord(c) for c in text]

def build_half():
    return HalfTokenizer()

def build_crash():
    raise RuntimeError("boom")

def build_needs_wiring():
    raise ValueError("embed_dim is not set")

@hookimpl
def registry_core_components():
    return [
        ComponentSpec("tokenizer", "half", f"{__name__}:build_half", "Lacks embedding."),
        ComponentSpec("tokenizer", "crash", f"{__name__}:build_crash", "Fails to build."),
        ComponentSpec("tokenizer", "wired", f"{__name__}:build_needs_wiring", "Declines its defaults."),
    ]
"""
    make_dist("kithalf", src)
    problems = check_plugin("kithalf", Registry(use_env=False), check_imports=False)
    assert any("kithalf:half" in p and "lacks 'embedding'" in p for p in problems), problems
    assert any("kithalf:crash" in p and "RuntimeError: boom" in p for p in problems), problems
    assert not any("kithalf:wired" in p for p in problems)
    assert check_plugin("kithalf", Registry(use_env=False), check_imports=False, build=False) == []


def test_kit_reports_a_command_whose_code_does_not_import(make_dist) -> None:
    src = """
from registry_core import CommandSpec, hookimpl

@hookimpl
def registry_core_commands():
    return [CommandSpec("hi", "Say hi.", "rc_no_such_cmd_module:add", "rc_no_such_cmd_module:run")]
"""
    make_dist("kitcmd", src)
    problems = check_plugin("kitcmd", Registry(use_env=False), check_imports=False)
    assert any("command 'hi' of plugin 'kitcmd' cannot be loaded" in p and "rc_no_such_cmd_module:add" in p
               for p in problems), problems
