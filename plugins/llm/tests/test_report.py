"""registry-llm's report figures from a real (tiny) GPT run: 1-D RoPE table and causal attention on a prompt."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

#: The corpus's words (its paragraphs draw from them at random, seeded).
WORDS = ("the", "with", "statement", "is", "used", "to", "wrap", "execution", "of", "a", "block", "methods", "defined",
         "by", "context", "manager", "for", "loop", "class", "function", "return", "value", "list", "dict", "module")


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-step run of a 1-block GPT with RoPE on a small corpus, as ``run --out`` writes it (summary.json too)."""
    root = tmp_path_factory.mktemp("gpt-report")
    rng = random.Random(0)
    paragraphs = [" ".join(rng.choice(WORDS) for _ in range(60)) + "." for _ in range(120)]
    (root / "corpus.txt").write_text("\n\n".join(paragraphs))
    (root / "gpt.toml").write_text(f"""
name = "gpt-report"
[data]
use = "text-shards"
paths = ["{root / 'corpus.txt'}"]
out = "{root / 'shards'}"
txt_documents = "blank-lines"
seq_len = 32
val_fraction = 0.2
quality_filter = false
[tokenizer]
use = "bpe"
vocab_size = 320
[positional]
use = "rope"
[backbone]
use = "gpt"
embed_dim = 32
depth = 1
heads = 2
max_positions = 64
[objective]
use = "next-token"
[[evaluators]]
use = "perplexity"
[[evaluators]]
use = "unigram-baseline"
[train]
steps = 4
batch_size = 4
log_every = 2
checkpoint_every = 0
""")
    run = subprocess.run([sys.executable, "-m", "registry_core", "run", "gpt.toml", "--out", "run", "--sample", ""],
                         capture_output=True, text=True, cwd=root, check=False, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return root / "run"


def test_a_text_run_reports_its_positions_causal_attention_and_perplexities(gpt_run: Path, tmp_path: Path,
                                                                           report_page, page_layout) -> None:
    out = subprocess.run([sys.executable, "-m", "registry_core", "report", str(gpt_run), "--out", "rep"],
                         capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    row = next(line for line in out.stdout.splitlines() if "gpt-report" in line)
    assert "perplexity" in row and "bits/byte" in row and "unigram perplexity" in row
    page = report_page(tmp_path / "rep" / "index.html")
    assert {"summary", "training-curves", "positional-encodings", "attention", "registry",
            "pipeline-locks"} <= set(page.sections)
    assert sorted(p.name for p in page.images) == ["run-attention.png", "run-curves.png", "run-positions-1d.png"]
    assert "run: causal attention" in page.figures and "run: 1-D positional encoding (llm:rope)" in page.figures
    assert any("RoPE angle cos table" in c for c in page.captions)
    for width in (1400, 800):  # the attention heads wrap onto rows: their token labels keep their size
        layout = page_layout(page.index, width)
        assert layout.broken == [] and layout.scroll_width <= layout.client_width and layout.too_wide == [], layout
        assert min(layout.scale.values()) > 0.95, layout.scale


def test_the_recorded_attention_of_the_trained_gpt_is_causal(gpt_run: Path) -> None:
    import torch

    from registry_core import Pipeline
    from registry_core.nn import eval_mode, record_attention
    from registry_llm.report import PROMPT

    pipeline = Pipeline.load(gpt_run)
    ids = torch.tensor([pipeline.tokenizer.encode(PROMPT)[:16]])
    with eval_mode(pipeline.parts), torch.no_grad(), record_attention(pipeline.parts.backbone.blocks[0].attn) as w:
        pipeline.objective.hidden(pipeline.parts, ids)
    probs = w[0][0]
    assert probs.shape == (2, ids.shape[1], ids.shape[1])
    assert float(probs.triu(1).abs().max()) == 0.0 and torch.allclose(probs.sum(-1), torch.ones(2, ids.shape[1]))
