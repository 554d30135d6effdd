"""Torch parts of the toy plugin: a learnable next-token task small enough to train in a second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class ToyWindows:
    """Sequences following t[i+1] = (3 t[i] + 1) mod vocab, starting at i mod vocab: easy to learn."""

    def __init__(self, vocab: int, seq_len: int, n: int, offset: int = 0) -> None:
        self.vocab, self.seq_len, self.n, self.offset = vocab, seq_len, n, offset

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        seq = [(i + self.offset) % self.vocab]
        for _ in range(self.seq_len):
            seq.append((3 * seq[-1] + 1) % self.vocab)
        t = torch.tensor(seq)
        return {"input_ids": t[:-1], "targets": t[1:]}


class ToyData:
    def __init__(self, config: Any) -> None:
        self.config = config
        self.prepared = 0

    def prepare(self) -> None:
        self.prepared += 1

    def fingerprint(self) -> dict[str, Any]:
        """What the run trains on (its lock records it; --resume compares it)."""
        c = self.config
        return {"source": f"toy text ({c.samples} samples)", "samples": c.samples, "vocab": c.vocab}

    def dataset(self, split: str) -> ToyWindows:
        c = self.config
        return ToyWindows(c.vocab, c.seq_len, c.samples if split == "train" else 8, offset=0 if split == "train" else 5)


class ToyTokenizer:
    tokens = "discrete"
    trained = True

    def __init__(self, config: Any) -> None:
        self.config = config
        self.vocab_size = config.vocab_size

    def encode(self, text: str) -> list[int]:
        return [ord(c) % self.vocab_size for c in text]

    def embedding(self, embed_dim: int) -> nn.Module:
        return nn.Embedding(self.vocab_size, embed_dim)

    def files(self) -> list[Path]:
        return [Path(self.config.path)] if self.config.path else []

    def save(self, folder: Path) -> Path:
        out = Path(folder) / "vocab.txt"
        out.write_text("\n".join(str(i) for i in range(self.vocab_size)))
        return out


class ToyPositions(nn.Module):
    mode = "additive"
    grid = 1

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(config.max_positions or 64, config.embed_dim or 32))

    def forward(self, x: torch.Tensor, positions: Any = None) -> torch.Tensor:
        return x + self.table[: x.shape[1]]


class ToyBackbone(nn.Module):
    """A causal mixing layer (running mean) and an MLP: enough to learn the toy task."""

    causal = True

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.embed_dim = config.embed_dim
        self.norm = nn.LayerNorm(config.embed_dim)
        self.mlp = nn.Sequential(nn.Linear(config.embed_dim, config.hidden), nn.GELU(), nn.Linear(config.hidden, config.embed_dim))

    def forward(self, x: torch.Tensor, positional: Any = None, positions: Any = None) -> torch.Tensor:
        if positional is not None:
            x = positional(x)
        return x + self.mlp(self.norm(x))  # (B, T, D)

    def flops_per_token(self, seq_len: int) -> float:
        return 6.0 * sum(p.numel() for p in self.parameters())


class ToyNextToken(nn.Module):
    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def bind(self, parts: Any) -> None:
        self.head = nn.Linear(self.config.embed_dim, self.config.vocab_size, bias=False)
        self.head.weight = parts.embed.weight  # tied

    def forward(self, parts: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        h = parts.backbone(parts.embed(batch["input_ids"]), parts.positional)
        logits = self.head(h)
        loss = F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten())
        return loss, {"accuracy": float((logits.argmax(-1) == batch["targets"]).float().mean())}


class ToyWeights:
    fills = ("encoder",)

    def __init__(self, config: Any) -> None:
        self.meta = {"bands": list(config.bands)}

    def files(self) -> list[Path]:
        return []

    def load_into(self, parts: Any) -> None:
        with torch.no_grad():
            parts.embed.weight.fill_(0.01)


class ToyEval:
    def __init__(self, config: Any) -> None:
        self.config = config

    def evaluate(self, pipeline: Any, split: str = "val") -> dict[str, float]:
        data = pipeline.data.dataset(split)
        batch = {k: torch.stack([data[i][k] for i in range(4)]) for k in ("input_ids", "targets")}
        with torch.no_grad():
            loss, _ = pipeline.model(batch)
        return {"loss": float(loss)}
