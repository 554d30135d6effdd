"""Nothing silently ignored, through the real CLI: out-of-range options, oversized models, plugin names, exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from registry_core import ConfigError
from registry_core.pipeline._pipeline import compose
from registry_core.pipeline._size_check import size_issues

ROOT = Path(__file__).resolve().parents[2]
GPT = str(ROOT / "examples" / "gpt-tiny.toml")


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True, cwd=cwd,
                          check=False, env={**os.environ, **env})


@pytest.mark.parametrize(("options", "line"), [
    (["--top-p", "5"], "error: --top-p must be in (0, 1] (1: no top-p), got 5.0"),
    (["--top-p", "0"], "error: --top-p must be in (0, 1] (1: no top-p), got 0.0"),
    (["--top-k", "-3"], "error: --top-k must be >= 1 (leave it unset for no top-k), got -3"),
    (["--temperature", "nan"], "error: --temperature must be a finite number >= 0 (0: greedy), got nan"),
    (["--max-tokens", "-1"], "error: --max-tokens must be >= 0, got -1"),
])
def test_generate_refuses_out_of_range_sampling(tmp_path: Path, options: list[str], line: str) -> None:
    out = cli("generate", "no-such-run", "--prompt", "The", *options, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [line]  # refused before the run folder is even read


def test_sample_next_refuses_what_the_cli_refuses() -> None:
    import torch

    from registry_llm.generation import sample_next

    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        sample_next(torch.zeros(4), top_p=5.0)
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        sample_next(torch.zeros(4), top_k=-3)
    assert sample_next(torch.tensor([0.0, 9.0]), top_k=1, top_p=1.0) == 1


@pytest.mark.parametrize(("override", "issue"), [
    ("train.lr=nan", "[train.lr] expected a finite number, got nan"),
    ("train.lr=inf", "[train.lr] expected a finite number, got inf"),
    ("train.min_lr=-inf", "[train.min_lr] expected a finite number, got -inf"),
    ("train.betas=[0.9, nan]", "[train.betas] expected a finite number, got nan"),
])
def test_non_finite_numbers_are_config_errors(tmp_path: Path, override: str, issue: str) -> None:
    out = cli("check", GPT, "--set", override, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [f"error: {GPT}: {issue}"]


@pytest.mark.parametrize(("override", "key"), [
    ("backbone.depth=100000", "[backbone.depth] training needs at least"),
    ("backbone.max_positions=10000000000", "[backbone.max_positions] training needs at least"),
    ("backbone.embed_dim=1000000", "[backbone.embed_dim] training needs at least"),
])
def test_check_refuses_a_model_that_cannot_fit_in_memory(tmp_path: Path, override: str, key: str) -> None:
    out = cli("check", GPT, "--set", override, cwd=tmp_path)
    assert out.returncode == 1
    [line] = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {GPT}: {key}") and "GiB of memory of this machine; lower" in line
    assert list(tmp_path.iterdir()) == []


def test_size_estimate_has_a_bound_and_names_seq_len_when_it_is_the_absurd_one() -> None:
    pipeline = compose(GPT)
    assert size_issues(pipeline.slots, pipeline.train) == []  # the example fits
    issues = size_issues(pipeline.slots, pipeline.train, limit=2**20)  # a 1 MiB bound: even the example is too big
    assert len(issues) == 1 and issues[0].message.startswith("training needs at least")
    assert "more than the 0.000977 GiB" in issues[0].message
    with pytest.raises(ConfigError, match=r"\[data.seq_len\] training needs at least .* lower seq_len"):
        compose({"recipe": "gpt-tiny", "data": {"seq_len": 10**8}, "backbone": {"max_positions": 10**8},
                 "positional": {"use": "rope", "max_positions": 10**8}})


def test_a_block_name_that_matches_no_plugin_is_reported(tmp_path: Path) -> None:
    plugins = cli("plugins", cwd=tmp_path, REGISTRY_CORE_BLOCK="lmm")
    assert plugins.returncode == 0
    assert ("problem: REGISTRY_CORE_BLOCK (or blocked=) names 'lmm', which matches no plugin, so it blocks nothing; "
            "did you mean 'llm'?") in plugins.stdout.splitlines()
    doctor = cli("doctor", cwd=tmp_path, REGISTRY_CORE_BLOCK="lmm")
    assert doctor.returncode == 1
    assert "no problems found" not in doctor.stdout and "1 problem(s) found" in doctor.stdout
    fine = cli("doctor", cwd=tmp_path, REGISTRY_CORE_BLOCK="llm")  # a real name: blocked, nothing to report
    assert "REGISTRY_CORE_BLOCK" not in fine.stdout


@pytest.mark.parametrize(("body", "error"), [
    ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ("raise SystemExit('bye')\n", "SystemExit: bye"),
    ("raise GeneratorExit()\n", "GeneratorExit"),
])
def test_a_plugin_that_exits_at_import_is_broken_not_fatal(make_dist: Callable[..., object], tmp_path: Path,
                                                            body: str, error: str) -> None:
    make_dist("quitter", body)
    out = cli("plugins", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.strip().startswith("quitter"))
    assert "broken" in row and error in row
    assert any(line.strip().startswith("llm ") and "loaded" in line for line in out.stdout.splitlines())
    doctor = cli("doctor", cwd=tmp_path)
    assert doctor.returncode == 1 and "broken plugin 'quitter'" in doctor.stdout


def test_a_plugin_that_exits_in_a_hook_is_broken_too(make_dist: Callable[..., object], tmp_path: Path) -> None:
    make_dist("hookquit", """
        import sys
        from registry_core import hookimpl

        @hookimpl
        def registry_core_components():
            sys.exit(4)
    """)
    out = cli("plugins", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.strip().startswith("hookquit"))
    assert "broken" in row and "registry_core_components() failed: SystemExit: 4" in row


@pytest.mark.parametrize("words", [["list", "--json"], ["plugins", "--json"], ["show", "no-such-thing", "--json"],
                                   ["check", "missing.toml", "--json"]])
def test_json_holds_whatever_a_plugin_prints(make_dist: Callable[..., object], tmp_path: Path,
                                             words: list[str]) -> None:
    """stdout of a ``--json`` command is one JSON document, even when a plugin prints at import and in a hook."""
    make_dist("chatty", """
        import sys
        from registry_core import hookimpl

        print("hello from chatty at import")
        sys.stdout.write("no newline either")

        @hookimpl
        def registry_core_components():
            print("and from a hook")
            return []
    """)
    out = cli(*words, cwd=tmp_path)
    document = json.loads(out.stdout)  # the whole of stdout parses: nothing else was printed there
    assert isinstance(document, (list, dict))
    assert "hello from chatty at import" in out.stderr and "and from a hook" in out.stderr
