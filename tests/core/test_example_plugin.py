"""The stand-alone example plugin (examples/plugin-chartok), found through its real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from registry_core import Pipeline, Registry
from registry_core.testing import assert_plugin_ok

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "examples" / "plugin-chartok"


@pytest.fixture
def chartok(install_example: Callable[[Path], None]) -> Registry:
    """The example installed as pip would list it (its real entry points)."""
    install_example(PACKAGE)
    return Registry(use_env=False)


def test_example_plugin_passes_the_author_kit(chartok: Registry) -> None:
    assert_plugin_ok("chartok", chartok)
    spec = chartok.get("tokenizer", "char")
    assert (spec.id, spec.distribution, spec.version) == ("chartok:char", "registry-chartok", "0.1.0")


def test_example_pipeline_composes_with_the_plugin(chartok: Registry) -> None:
    p = Pipeline.from_toml(ROOT / "examples" / "gpt-char.toml", chartok)
    assert p.slots["tokenizer"].spec.id == "chartok:char"
    assert p.slots["objective"].config.vocab_size == 128  # wired from the plugin's tokenizer
    assert p.slots["backbone"].spec.id == "llm:gpt"  # the rest comes from the recipe


@pytest.mark.slow
def test_example_pipeline_trains_and_generates(chartok: Registry, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "registry_core", "run", str(ROOT / "examples" / "gpt-char.toml"), "--out", "out",
         "--steps", "30", "--set", f"data.out={tmp_path / 'shards'}", "--set", "train.log_every=10"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["evaluators"]["llm:perplexity"]["loss"] < summary["evaluators"]["llm:unigram-baseline"]["loss"]
    lock = json.loads((tmp_path / "out" / "pipeline.lock.json").read_text())
    assert any(c["distribution"] == "registry-chartok" for c in lock["components"])
    assert "tokenizer:chars.json" in lock["files"]
    assert "sample: The" in run.stdout
