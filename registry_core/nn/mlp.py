"""The position-wise feed-forward network of a transformer block."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from registry_core.choices import ACTIVATIONS

__all__ = ["MLP"]


class MLP(nn.Module):
    """``fc -> activation -> proj -> dropout``: ``(..., D) -> (..., D)`` through a hidden width."""

    def __init__(self, dim: int, hidden: int, *, bias: bool = True, activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
        self.fc = nn.Linear(dim, hidden, bias=bias)
        self.proj = nn.Linear(hidden, dim, bias=bias)
        self.activation = activation
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if self.activation == "gelu":
            h = F.gelu(h)
        elif self.activation == "gelu-tanh":
            h = F.gelu(h, approximate="tanh")
        elif self.activation == "relu":
            h = F.relu(h)
        else:
            h = F.silu(h)
        return self.dropout(self.proj(h))
