"""The CLI in a subprocess, as a user runs it: output, JSON form, exit codes, and no heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from registry_core.testing import HEAVY_MODULES

TOY = """
from dataclasses import dataclass
from registry_core import ComponentSpec, hookimpl, option

@dataclass
class Cfg:
    width: int = option(8, help="How wide.", min=1)

@hookimpl
def registry_core_components():
    return [
        ComponentSpec("backbone", "toy-net", "toy_target_pkg.net:Net", "A toy network.", modality="imagery",
                      tags=("demo",), config=Cfg, provides={"embed_dim": None, "causal": False}),
        ComponentSpec("tokenizer", "toy-tok", "toy_target_pkg.tok:Tok", "A toy tokenizer.", modality="text",
                      replaces="elsewhere:toy"),
    ]
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def toy_dist(make_dist) -> None:
    make_dist("toys", TOY, dist_name="toy-dist", version="0.4.0")


def test_list_groups_by_kind_and_marks_status(toy_dist) -> None:
    out = cli("list")
    assert out.returncode == 0, out.stderr
    assert "backbone" in out.stdout and "toys:toy-net" in out.stdout and "toy-dist 0.4.0" in out.stdout
    assert "[replaces elsewhere:toy]" in out.stdout
    assert "elsewhere:toy" in out.stderr  # the orphan replacement is reported


def test_list_json_has_the_documented_keys(toy_dist) -> None:
    out = cli("list", "--json", "--kind", "backbone", "toy*")
    rows = json.loads(out.stdout)
    assert [r["id"] for r in rows] == ["toys:toy-net"]
    assert set(rows[0]) == {"kind", "name", "id", "plugin", "distribution", "version", "summary", "modality",
                            "tags", "replaces", "replaced_by", "status", "card"}
    assert rows[0]["card"] is None  # a building block, not a named pretrained model
    assert rows[0]["status"] == "active" and rows[0]["tags"] == ["demo"]
    assert json.loads(cli("list", "--json", "--modality", "text", "--tag", "nope").stdout) == []


def test_show_prints_options_and_ports(toy_dist) -> None:
    out = cli("show", "backbone", "toy-net")
    assert out.returncode == 0, out.stderr
    assert "width" in out.stdout and "How wide." in out.stdout and ">= 1" in out.stdout
    assert "embed_dim=<from config>" in out.stdout and "causal=False" in out.stdout
    rec = json.loads(cli("show", "backbone", "toys:toy-net", "--json").stdout)
    assert rec["options"][0]["name"] == "width" and rec["options"][0]["default"] == 8
    assert rec["target"] == "toy_target_pkg.net:Net"


def test_not_found_exits_1_with_suggestion(toy_dist) -> None:
    out = cli("show", "backbone", "toy-nett")
    assert out.returncode == 1 and "did you mean 'toy-net'" in out.stderr
    assert cli("list", "--kind", "backbon").returncode == 1


def test_usage_error_exits_2() -> None:
    assert cli("lsit").returncode == 2
    assert cli("show", "backbone").returncode == 2


def test_plugins_table_and_json(make_dist) -> None:
    make_dist("crashy", "raise RuntimeError('cannot start')\n")
    out = cli("plugins")
    assert "crashy" in out.stdout and "broken" in out.stdout and "cannot start" in out.stdout
    rows = {r["name"]: r for r in json.loads(cli("plugins", "--json").stdout)}
    assert rows["llm"]["status"] == "loaded" and rows["crashy"]["status"] == "broken"
    assert "Traceback" in rows["crashy"]["traceback"]
    assert "crashy" in cli("list").stderr


def test_doctor_reports_conflicts_and_exits_1(make_dist) -> None:
    make_dist("a1", TOY)
    make_dist("a2", TOY)
    out = cli("doctor")
    assert out.returncode == 1
    assert "conflict: backbone 'toy-net' is provided by a1:toy-net and a2:toy-net" in out.stdout
    assert "plugin import times" in out.stdout


@pytest.mark.parametrize("args", [["list"], ["show", "tokenizer", "bpe"], ["plugins"], ["list", "--json"],
                                  ["show", "weights", "prithvi-eo-2.0-300m-tl"], ["list", "--tag", "pretrained"]])
def test_browsing_imports_nothing_heavy(args: list[str], cli_modules) -> None:
    loaded = cli_modules(*args)
    assert [m for m in HEAVY_MODULES if m in loaded] == []
    # the manifests and what their schemas check with (gfm's geometry validators): no component code
    targets = [m for m in loaded if m.startswith(("registry_llm.", "registry_gfm."))
               and not m.endswith((".plugin", ".specs", ".cards", ".validators")) and m.count(".") > 1]
    assert targets == []
    # Browsing needs no composition or pipeline code either (registry_core loads them on first use).
    assert [m for m in ("registry_core.pipeline._pipeline", "registry_core.pipeline._compose") if m in loaded] == []


def test_list_accepts_plugin_modalities_and_rejects_unknown_ones(toy_dist) -> None:
    assert cli("list", "--modality", "imagery").returncode == 0
    out = cli("list", "--modality", "imagry")
    assert out.returncode == 2 and out.stderr == "error: unknown modality 'imagry'; did you mean 'imagery'?\n"
    assert "known modalities: any, imagery, text" in cli("list", "--modality", "zzz").stderr
    assert "any, imagery, text" in " ".join(cli("list", "--help").stdout.split())
