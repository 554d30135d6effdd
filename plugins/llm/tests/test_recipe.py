"""The gpt-tiny recipe: the registered recipe equals examples/gpt-tiny.toml, and a short run learns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from registry_core import Pipeline, compose, get_registry

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "gpt-tiny.toml"


def test_recipe_and_example_file_are_the_same_pipeline() -> None:
    from_file = Pipeline.from_toml(EXAMPLE)
    from_recipe = compose({"recipe": "gpt-tiny"})
    assert from_file == from_recipe
    assert from_recipe.slots["positional"].config.heads == 4  # wired from the backbone


def test_recipe_key_with_overrides() -> None:
    p = compose({"recipe": "gpt-tiny", "backbone": {"embed_dim": 64}, "train": {"steps": 5}})
    assert p.slots["backbone"].config.embed_dim == 64 and p.slots["backbone"].config.depth == 4
    assert p.slots["objective"].config.embed_dim == 64 and p.train.steps == 5
    assert get_registry().get("recipe", "gpt-tiny").id == "llm:gpt-tiny"


@pytest.mark.slow
def test_short_gpt_tiny_run_beats_the_unigram_baseline_and_generates(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "registry_core", "run", str(EXAMPLE), "--out", "out", "--steps", "80",
         "--set", f"data.out={tmp_path / 'shards'}", "--set", "train.checkpoint_every=40", "--set", "train.log_every=20"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    ppl, unigram = summary["evaluators"]["llm:perplexity"], summary["evaluators"]["llm:unigram-baseline"]
    assert ppl["loss"] < unigram["loss"] - 0.5
    assert ppl["bits_per_byte"] > 0
    assert "sample: The" in run.stdout
    gen = subprocess.run(
        [sys.executable, "-m", "registry_core", "generate", "out", "--prompt", "The for statement", "--max-tokens", "12",
         "--temperature", "0"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert gen.stdout.startswith("The for statement") and len(gen.stdout) > len("The for statement")


@pytest.mark.parametrize("name", ["cls-tiny", "sft-tiny"])
def test_the_finetuning_recipes_are_their_example_files(name: str) -> None:
    import tomllib

    recipe = get_registry().build("recipe", name).config()
    assert tomllib.loads((ROOT / "examples" / f"{name}.toml").read_text()) == recipe
