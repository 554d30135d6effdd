"""Gradient accumulation through the Trainer for the text objectives: N micro-batches give one big batch's loss and
gradient when each micro-batch's loss is weighed by the targets it counts (``loss_weight = "tokens"``).

Rows are whole sentences of Python's own documentation (``pydoc_data/topics.py``) of different lengths, padded
to one length, so the micro-batches of a step count different numbers of targets. Without the weighting (the
objective's ``loss_weight`` set to None: every micro-batch weighs the same) the split run measurably differs.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

import pytest
import torch

from registry_core import compose, get_registry
from registry_core.training import TrainConfig, Trainer, rank_micro_batches
from registry_llm.tokenizers.bpe import BPETokenizer

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SEQ = 48  # tokens per row (next-token rows read SEQ + 1 and shift)
ROWS, BATCH, MICRO, STEPS = 64, 16, 4, 3
IGNORE = -100


@pytest.fixture(scope="module")
def bpe(tmp_path_factory: pytest.TempPathFactory) -> tuple[BPETokenizer, Path]:
    """A small byte-level BPE trained here on a share of the corpus, and its tokenizer.json for the pipeline."""
    tok: BPETokenizer = get_registry().build("tokenizer", "bpe", vocab_size=384)
    tok.train(topics[k] for k in sorted(topics)[:20])
    return tok, tok.save(tmp_path_factory.mktemp("bpe"))


def _sentences(tok: BPETokenizer, n: int, longest: int) -> list[list[int]]:
    """Token ids of ``n`` whole sentences (the first of 6..``longest`` tokens of each topic): real, varied lengths."""
    out: list[list[int]] = []
    for key in sorted(topics):
        for sentence in re.split(r"(?<=[.:;])\s+", " ".join(topics[key].split())):
            ids = tok.encode(sentence)
            if 6 <= len(ids) <= longest:
                out.append(ids)
                break
        if len(out) == n:
            return out
    raise AssertionError(f"pydoc topics gave only {len(out)} sentences of 6..{longest} tokens")


def _padded(ids: list[int], length: int, pad: int) -> torch.Tensor:
    return torch.tensor(ids + [pad] * (length - len(ids)))


def next_token_rows(tok: BPETokenizer) -> list[dict[str, torch.Tensor]]:
    """``{"input_ids", "targets"}`` of SEQ tokens: each sentence shifted by one, padded with the pad id."""
    assert tok.pad_id is not None
    rows = []
    for ids in _sentences(tok, ROWS, SEQ + 1):
        full = _padded(ids, SEQ + 1, tok.pad_id)
        rows.append({"input_ids": full[:-1], "targets": full[1:]})
    return rows


def masked_lm_rows(tok: BPETokenizer) -> list[dict[str, torch.Tensor]]:
    """``{"input_ids", "keep"}`` of SEQ tokens: each sentence padded with the pad id; ``keep`` marks its real tokens."""
    assert tok.pad_id is not None
    rows = []
    for ids in _sentences(tok, ROWS, SEQ):
        keep = torch.zeros(SEQ, dtype=torch.bool)
        keep[: len(ids)] = True
        rows.append({"input_ids": _padded(ids, SEQ, tok.pad_id), "keep": keep})
    return rows


def build_model(objective: str, tokenizer_json: Path) -> Any:
    """A tiny GPT (next-token) or BERT (masked-lm) pipeline model: width 32, depth 2, no dropout, seeded init."""
    backbone = "gpt" if objective == "next-token" else "bert"
    pipe = compose({
        "data": {"use": "text-shards", "seq_len": SEQ, "out": str(tokenizer_json.parent / "unused-shards")},
        "tokenizer": {"use": "bpe", "path": str(tokenizer_json)},
        "positional": {"use": "rope"},
        "backbone": {"use": backbone, "embed_dim": 32, "depth": 2, "heads": 4, "max_positions": 64, "dropout": 0.0},
        "objective": {"use": objective},
    }).build(prepare=False)  # the same seeded initial weights at every build
    model = pipe.model
    assert model.loss_weight == "tokens" and "tokens" in model.count_metrics
    if objective == "masked-lm":
        fix_masks_per_row(model.objective)
    return model


def fix_masks_per_row(objective: Any) -> None:
    """Make masked-LM's random choice a function of each row alone.

    In training ``corrupt`` draws from one RNG stream over the whole ``(B, T)`` batch, so four micro-batches of 4
    rows draw other masks than one batch of 16: the split and whole runs would not see the same chosen tokens, and
    no weighting could make them agree. Here the objective's own ``corrupt`` (its 15% choice and 80/10/10
    corruption, unchanged) runs row by row with a generator seeded by the row's content: every row gets the same
    mask in whichever micro-batch it lands, and the number of chosen tokens still varies from row to row.
    """
    corrupt = objective.corrupt  # the bound method of the class

    def per_row(ids: torch.Tensor, keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        outs = []
        for i in range(ids.shape[0]):
            objective.generator = torch.Generator().manual_seed(zlib.crc32(ids[i].numpy().tobytes()))
            outs.append(corrupt(ids[i : i + 1], None if keep is None else keep[i : i + 1]))
        objective.generator = None
        return torch.cat([c for c, _ in outs]), torch.cat([t for _, t in outs])

    objective.corrupt = per_row  # an instance attribute: forward's self.corrupt finds it first


def counts_per_micro_batch(rows: list[dict[str, torch.Tensor]], objective: str, model: Any) -> list[int]:
    """The targets each micro-batch of the first step counts (the trainer's data order, micro-batches of MICRO)."""
    assert model.training  # corrupt draws from the objective's generator only in training mode
    counts = []
    for micro in rank_micro_batches(len(rows), 0, 0, BATCH, MICRO, 0, 1):
        if objective == "next-token":
            targets = torch.stack([rows[i]["targets"] for i in micro])
            counts.append(int((targets != model.objective.pad_id).sum()))
        else:
            ids, keep = (torch.stack([rows[i][k] for i in micro]) for k in ("input_ids", "keep"))
            counts.append(int((model.objective.corrupt(ids, keep)[1] != IGNORE).sum()))
    return counts


def train(model: Any, rows: list[dict[str, torch.Tensor]], micro: int, out: Path, *, weighted: bool = True) -> Any:
    """Fit ``model`` for STEPS steps of BATCH rows in micro-batches of ``micro``; ``weighted=False``: the old way,
    every micro-batch's loss weighing the same (the objective's loss_weight set to None)."""
    if not weighted:
        model.objective.loss_weight = None  # shadows the class attribute; the model reads it from the objective
        assert model.loss_weight is None
    # A small lr: AdamW scales every element's step to about lr, so an element whose true gradient is ~0 (the
    # attention key bias: softmax ignores it) moves by its float noise blown up; 3e-4 keeps that well inside the
    # tolerance on the weights, while a wrongly weighted gradient still moves them ~1e-3 apart.
    config = TrainConfig(steps=STEPS, batch_size=BATCH, micro_batch_size=micro, lr=3e-4, warmup_steps=0,
                         grad_clip=None, seed=0, log_every=1, checkpoint_every=0, device="cpu")
    with Trainer(model, rows, config, out) as trainer:
        assert trainer.accum == BATCH // micro
        trainer.fit()
    return model


def metrics(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _column(out: Path, key: str) -> list[float]:
    return [float(r[key]) for r in metrics(out)]


def _params(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    return ((name, p.detach()) for name, p in model.named_parameters())


@pytest.mark.parametrize("objective", ["next-token", "masked-lm"])
def test_accumulation_weighs_text_micro_batches_by_their_tokens(
    objective: str, bpe: tuple[BPETokenizer, Path], tmp_path: Path
) -> None:
    """Whole batch vs 4 micro-batches, through ``Trainer.fit``: the same per-step losses, gradient norms, token
    counts and final weights; weighing the micro-batches equally instead gives another loss and gradient."""
    tok, path = bpe
    rows = next_token_rows(tok) if objective == "next-token" else masked_lm_rows(tok)
    whole = train(build_model(objective, path), rows, BATCH, tmp_path / "whole")
    split = train(build_model(objective, path), rows, MICRO, tmp_path / "split")
    before = train(build_model(objective, path), rows, MICRO, tmp_path / "before", weighted=False)

    counts = counts_per_micro_batch(rows, objective, split)
    assert max(counts) >= 1.25 * min(counts), counts  # the micro-batches count clearly different numbers of targets

    # the same rows and the same chosen tokens in both runs: the summed counts of every step agree
    assert _column(tmp_path / "split", "tokens") == _column(tmp_path / "whole", "tokens")
    assert _column(tmp_path / "whole", "tokens")[0] == sum(counts)
    for key in ("loss", "grad_norm"):
        assert _column(tmp_path / "split", key) == pytest.approx(_column(tmp_path / "whole", key), rel=1e-5), key
    for (name, p), (_, q) in zip(_params(whole), _params(split)):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name

    # Before: with every micro-batch weighing the same, the loss is the mean of the micro-batch means and the gradient
    # another one. At init an LM's per-token losses are all near log(V), so next-token's loss moves least (~2.6e-4
    # relative on its most uneven step, 26x the tolerance above); the gradient norm and the weights move clearly.
    loss_whole, loss_before = _column(tmp_path / "whole", "loss"), _column(tmp_path / "before", "loss")
    norm_whole, norm_before = _column(tmp_path / "whole", "grad_norm"), _column(tmp_path / "before", "grad_norm")
    assert max(abs(b - a) / a for a, b in zip(loss_whole, loss_before)) > 1e-4, (loss_before, loss_whole)
    assert max(abs(b - a) / a for a, b in zip(norm_whole, norm_before)) > 1e-3, (norm_before, norm_whole)
    assert max((p - q).abs().max().item() for (_, p), (_, q) in zip(_params(whole), _params(before))) > 1e-4
