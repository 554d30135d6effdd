"""The output projection of both LM objectives: tied to the token embedding, or a linear layer of its own."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from registry_core.interfaces import ModelParts


class LMHead(nn.Module):
    """Maps ``(..., D)`` hidden states to ``(..., V)`` logits over the real vocabulary.

    Tied: the embedding table is read from ``parts.embed.weight`` at call time and never registered
    here, so it stays one parameter owned by the embedding (optimizers and checkpoints see it once).
    ``transform`` (BERT's head): ``LayerNorm(gelu(dense(h)))`` first, and an output bias per token.
    """

    def __init__(self, name: str, embed_dim: int | None, vocab_size: int | None, tie: bool,
                 transform: bool = False, eps: float = 1e-12) -> None:
        super().__init__()
        self.objective_name = name
        self.embed_dim = embed_dim
        self.vocab_size = vocab_size
        self.tie = tie
        self.tied = False
        self.proj: nn.Linear | None = None
        self.with_transform = transform
        self.eps = eps
        self.transform: nn.Linear | None = None
        self.transform_norm: nn.LayerNorm | None = None
        self.bias: nn.Parameter | None = None

    def bind(self, parts: ModelParts) -> None:
        """Tie to the embedding table when possible, else create an untied projection."""
        dim = self.embed_dim or getattr(parts.backbone, "embed_dim", None)
        if dim is None:
            raise ValueError(f"objective {self.objective_name!r}: embed_dim is unknown; set it or bind a backbone")
        table: Any = getattr(parts.embed, "weight", None)
        if isinstance(table, torch.Tensor) and table.dim() == 2:
            if table.shape[1] != dim:
                raise ValueError(
                    f"objective {self.objective_name!r}: embedding width {table.shape[1]} != embed_dim {dim}"
                )
            if self.vocab_size is None:
                self.vocab_size = table.shape[0]
            elif self.vocab_size > table.shape[0]:
                raise ValueError(
                    f"objective {self.objective_name!r}: vocab_size {self.vocab_size} is larger than the embedding "
                    f"table ({table.shape[0]} rows)"
                )
        if self.vocab_size is None:
            raise ValueError(
                f"objective {self.objective_name!r}: vocab_size is unknown; set it or bind an nn.Embedding-like embed"
            )
        self.embed_dim = dim
        if self.with_transform:
            ref = table if isinstance(table, torch.Tensor) else None
            self.transform = nn.Linear(dim, dim)
            nn.init.normal_(self.transform.weight, mean=0.0, std=0.02)
            nn.init.zeros_(self.transform.bias)
            self.transform_norm = nn.LayerNorm(dim, eps=self.eps)
            self.bias = nn.Parameter(torch.zeros(self.vocab_size))
            if ref is not None:
                for module in (self.transform, self.transform_norm):
                    module.to(device=ref.device, dtype=ref.dtype)
                self.bias.data = self.bias.data.to(device=ref.device, dtype=ref.dtype)
        if self.tie and isinstance(table, torch.Tensor):
            self.tied = True
            self.proj = None
        else:
            self.tied = False
            self.proj = nn.Linear(dim, self.vocab_size, bias=False)
            nn.init.normal_(self.proj.weight, mean=0.0, std=0.02)
            if isinstance(table, torch.Tensor):
                self.proj.to(device=table.device, dtype=table.dtype)

    def weight(self, parts: ModelParts) -> torch.Tensor:
        """``(V, D)``: the (tied) output matrix, cut to the real vocabulary (the table may be padded)."""
        if self.proj is not None:
            return self.proj.weight
        if not self.tied or self.vocab_size is None:
            raise RuntimeError(f"objective {self.objective_name!r} is not bound; call objective.bind(parts) first")
        table: torch.Tensor = parts.embed.weight
        return table[: self.vocab_size]  # a view: rows are contiguous

    def forward(self, parts: ModelParts, hidden: torch.Tensor) -> torch.Tensor:
        if self.transform is not None and self.transform_norm is not None:
            hidden = self.transform_norm(torch.nn.functional.gelu(self.transform(hidden)))
        return torch.nn.functional.linear(hidden, self.weight(parts), self.bias)
