"""``export RUN --to hf-gpt2 OUT`` through the real CLI: a tiny trained gpt opens in transformers with the same logits.

The run (learned positions, a few steps, fewer than its warm-up) is trained once by ``run`` in a subprocess
with stderr piped, so the same run also shows the warm-up warning and the plain progress lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_one_thread")]

PROMPT = "The with statement is used to wrap the execution of a block"

TINY = """
name = "gpt-export"
[data]
use = "text-shards"
paths = ["{corpus}"]
txt_documents = "blank-lines"
out = "{shards}"
seq_len = 32
dedup = "none"
quality_filter = false
[tokenizer]
use = "bpe"
vocab_size = 300
[positional]
use = "{positional}"
[backbone]
use = "gpt"
embed_dim = 32
depth = 2
heads = 2
max_positions = 64
[objective]
use = "next-token"
[train]
steps = 3
batch_size = 4
warmup_steps = 10
log_every = 1
"""


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True, check=False,
                          cwd=cwd)


def write_pipeline(folder: Path, positional: str) -> Path:
    """A tiny gpt pipeline file over a corpus of 40 pydoc topics (real English, a few hundred KB)."""
    from pydoc_data.topics import topics

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n\n".join(topics[k] for k in sorted(topics)[:40]), encoding="utf-8")
    path = folder / f"{positional}.toml"
    path.write_text(TINY.format(corpus=corpus, shards=folder / f"shards-{positional}", positional=positional))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A learned-position gpt run trained by ``run`` (stderr piped, not a terminal), and what it printed."""
    root = tmp_path_factory.mktemp("export")
    done = cli("run", str(write_pipeline(root, "learned")), "--out", str(root / "run"), "--sample", "")
    assert done.returncode == 0, done.stderr
    return root / "run", done


def test_exported_run_opens_in_transformers_with_our_logits_and_tokenizer(
        trained: tuple[Path, Any], tmp_path: Path) -> None:
    from registry_core import Pipeline

    run, _ = trained
    out = tmp_path / "hf"
    done = cli("export", str(run), "--to", "hf-gpt2", str(out))
    assert done.returncode == 0, done.stderr
    assert f"into {out}" in done.stdout
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in out.iterdir()}

    model = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    ours = Pipeline.load(run)
    ours.model.eval()
    ids = ours.tokenizer.encode(PROMPT)
    assert hf_tok(PROMPT)["input_ids"] == ids
    assert hf_tok.decode(ids) == PROMPT
    assert hf_tok.eos_token == "<|eos|>" and model.config.eos_token_id == ours.tokenizer.eos_id
    x = torch.tensor([ids])
    with torch.no_grad():
        expected = ours.objective.logits(ours.parts, x)
        got = model(x).logits
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-4


def test_export_json_lists_the_files(trained: tuple[Path, Any], tmp_path: Path) -> None:
    run, _ = trained
    done = cli("export", str(run), "--to", "hf-gpt2", str(tmp_path / "hf"), "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["format"] == "llm:hf-gpt2" and "model.safetensors" in record["files"]


def test_a_rope_run_is_refused_in_one_line_naming_why(tmp_path: Path) -> None:
    from registry_core import Pipeline

    run = tmp_path / "rope-run"
    pipeline = Pipeline.from_toml(write_pipeline(tmp_path, "rope"))
    pipeline.build().save(run)  # a saved, untrained run folder is enough to be refused
    out = tmp_path / "hf"
    done = cli("export", str(run), "--to", "hf-gpt2", str(out))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: cannot export {run} as hf-gpt2: its positional encoder is llm:rope; "
                                  "GPT-2 has a learned position table")
    assert not out.exists()  # nothing written


def test_unknown_format_lists_the_installed_ones(trained: tuple[Path, Any], tmp_path: Path) -> None:
    run, _ = trained
    done = cli("export", str(run), "--to", "onnx", str(tmp_path / "x"))
    assert done.returncode == 2
    assert done.stderr == "error: unknown export format 'onnx'; installed formats: deploy, hf-bert, hf-gpt2\n"
    assert "hf-gpt2" in cli("export", "--help").stdout


def test_export_refuses_a_non_empty_out_and_a_folder_that_is_no_run(trained: tuple[Path, Any], tmp_path: Path) -> None:
    run, _ = trained
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    done = cli("export", str(run), "--to", "hf-gpt2", str(busy))
    assert done.returncode == 1 and "is not empty" in done.stderr and "--overwrite" in done.stderr
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    done = cli("export", str(run), "--to", "hf-gpt2", str(busy), "--overwrite")  # a folder we did not write
    assert done.returncode == 1 and "--overwrite refused" in done.stderr and "carries no registry-core marker" in done.stderr
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    ours = tmp_path / "hf"
    assert cli("export", str(run), "--to", "hf-gpt2", str(ours)).returncode == 0
    assert cli("export", str(run), "--to", "hf-gpt2", str(ours), "--overwrite").returncode == 0  # our earlier export
    for inside in (run, run / "hf"):  # into the run itself, or a folder inside it
        done = cli("export", str(run), "--to", "hf-gpt2", str(inside), "--overwrite")
        assert done.returncode == 1 and "inside the run folder" in done.stderr, done.stderr
    assert not (run / "hf").exists() and not (run / "config.json").exists()
    done = cli("export", str(tmp_path / "nowhere"), "--to", "hf-gpt2", str(tmp_path / "y"))
    assert done.returncode == 1 and "is not a run folder (no pipeline.toml)" in done.stderr


def test_run_warns_when_steps_are_fewer_than_warmup_steps(trained: tuple[Path, Any]) -> None:
    _, done = trained
    assert "warning: train.steps=3 is less than train.warmup_steps=10" in done.stderr


def test_run_reports_plain_lines_when_stderr_is_not_a_terminal(trained: tuple[Path, Any]) -> None:
    _, done = trained
    assert "\r" not in done.stderr  # no bar redraws in a log file
    assert [line.split(" |")[0] for line in done.stderr.splitlines() if line.startswith("train: ")] == [
        "train: step 1/3", "train: step 2/3", "train: step 3/3"]
