"""The perplexity evaluator over a small dataset built here: token weighting, ignored targets, bits per byte."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from registry_core import get_registry
from registry_core.interfaces import ModelParts

V, D = 256, 32


pytestmark = pytest.mark.usefixtures("torch_one_thread")


class ByteTokenizer:
    """A byte-level tokenizer (id = byte), enough for bits-per-byte arithmetic to be checked exactly."""

    tokens = "discrete"

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


class TokenBytesTokenizer(ByteTokenizer):
    """The same, offering the exact per-id byte table the evaluator prefers."""

    def token_bytes(self, token: int) -> bytes:
        return bytes([token])


class WindowData:
    """Fixed windows of a text, split in train/val: items {"input_ids", "targets"} as the loader gives."""

    def __init__(self, text: str, seq_len: int, tokenizer: ByteTokenizer) -> None:
        ids = tokenizer.encode(text)
        self.windows = [ids[i : i + seq_len + 1] for i in range(0, len(ids) - seq_len, seq_len)]

    def dataset(self, split: str) -> list[dict[str, Any]]:
        items = [{"input_ids": torch.tensor(w[:-1]), "targets": torch.tensor(w[1:])} for w in self.windows]
        return items if split == "val" else []


@dataclass
class Pipeline:
    data: WindowData
    parts: ModelParts
    objective: Any
    tokenizer: Any


def _pipeline(tokenizer: ByteTokenizer | None = None, objective: str = "next-token") -> Pipeline:
    torch.manual_seed(0)
    reg = get_registry()
    tok = tokenizer or ByteTokenizer()
    backbone = "gpt" if objective == "next-token" else "bert"
    parts = ModelParts(
        nn.Embedding(V, D),
        reg.build("positional_encoder", "rope", embed_dim=D, heads=4),
        reg.build("backbone", backbone, embed_dim=D, depth=1, heads=4, max_positions=64),
    )
    obj = reg.build("objective", objective, **({"mask_id": 0} if objective == "masked-lm" else {}))
    obj.bind(parts)
    text = "The quick brown fox jumps over the lazy dog. " * 6
    return Pipeline(WindowData(text, 16, tok), parts, obj, tok)


def _reference(p: Pipeline) -> tuple[float, int]:
    total, n = 0.0, 0
    with torch.no_grad():
        for item in p.data.dataset("val"):
            logits = p.objective.logits(p.parts, item["input_ids"][None])[0]
            total += F.cross_entropy(logits, item["targets"], reduction="sum").item()
            n += item["targets"].numel()
    return total, n


@pytest.mark.parametrize("tokenizer", [ByteTokenizer(), TokenBytesTokenizer()])
def test_full_pass_token_weighted(tokenizer: ByteTokenizer) -> None:
    p = _pipeline(tokenizer)
    evaluator = get_registry().build("evaluator", "perplexity", batch_size=3)
    result = evaluator.evaluate(p, "val")
    total, n = _reference(p)
    assert result["tokens"] == n == 16 * len(p.data.windows)
    assert result["loss"] == pytest.approx(total / n, rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(total / n), rel=1e-5)
    # one byte per token: bits per byte is the loss in bits
    assert result["bits_per_byte"] == pytest.approx(total / n / math.log(2), rel=1e-5)
    assert p.parts.backbone.training  # modes restored


def test_ignored_targets_do_not_count() -> None:
    p = _pipeline()
    items = p.data.dataset("val")
    items[0]["targets"][:10] = -100
    p.data.dataset = lambda split: items  # type: ignore[method-assign]
    result = get_registry().build("evaluator", "perplexity").evaluate(p)
    assert result["tokens"] == 16 * len(items) - 10


def test_max_batches_and_errors() -> None:
    p = _pipeline()
    part = get_registry().build("evaluator", "perplexity", batch_size=2, max_batches=1).evaluate(p)
    assert part["tokens"] == 32
    with pytest.raises(ValueError, match="split 'train' has no samples"):
        get_registry().build("evaluator", "perplexity").evaluate(p, "train")
    with pytest.raises(TypeError, match=r"needs an objective with logits\(parts, ids\) over a causal backbone .*got "
                                        r"MaskedLMObjective on a bidirectional backbone"):
        get_registry().build("evaluator", "perplexity").evaluate(_pipeline(objective="masked-lm"))
