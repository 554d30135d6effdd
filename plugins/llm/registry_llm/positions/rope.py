"""``rope``: rotary position embedding, applied to queries and keys inside attention (Su et al. 2021)."""

from __future__ import annotations

import torch
from torch import nn

from registry_llm.positions._positions import DEFAULT_MAX_POSITIONS, lookup, span
from registry_llm.positions.specs import RopeConfig


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``[x1, x2] -> [-x2, x1]`` over the last dimension split in halves."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """``(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)``: the interleaved convention."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


class RotaryPositions(nn.Module):
    """``rotate(q, k, positions) -> (q, k)`` for ``(B, H, T, head_dim)`` queries and keys.

    Each pair of dimensions turns by ``position * base^(-2i/head_dim)``, so ``q·k`` depends on the
    distance between the two positions only. ``rotate-half`` pairs dimension ``i`` with
    ``i + head_dim/2`` (GPT-NeoX, LLaMA, HF); ``interleaved`` pairs ``2i`` with ``2i+1``.
    """

    mode = "rotary"
    grid = 1
    cos: torch.Tensor
    sin: torch.Tensor

    def __init__(
        self,
        head_dim: int | None = None,
        max_positions: int | None = None,
        base: float = 10000.0,
        convention: str = "rotate-half",
    ):
        super().__init__()
        if head_dim is not None and head_dim % 2:
            raise ValueError(f"positional encoder 'rope' needs an even head_dim, got {head_dim}")
        if convention not in ("rotate-half", "interleaved"):
            raise ValueError(f"rope convention must be 'rotate-half' or 'interleaved', got {convention!r}")
        self.head_dim = head_dim
        self.max_positions = max_positions or DEFAULT_MAX_POSITIONS
        self.base = base
        self.convention = convention
        self.register_buffer("cos", torch.empty(0, 0), persistent=False)
        self.register_buffer("sin", torch.empty(0, 0), persistent=False)

    def _tables(self, length: int, dim: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cos.shape[0] < length or self.cos.shape[1] != dim or self.cos.device != device:
            n = max(length, self.max_positions)
            inv = self.base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
            angles = torch.arange(n, dtype=torch.float64).unsqueeze(1) * inv  # (n, dim/2)
            if self.convention == "rotate-half":
                angles = torch.cat((angles, angles), dim=-1)  # dims i and i + dim/2 share an angle
            else:
                angles = angles.repeat_interleave(2, dim=-1)  # dims 2i and 2i+1 share an angle
            self.cos = angles.cos().float().to(device)
            self.sin = angles.sin().float().to(device)
        return self.cos, self.sin

    def rotate(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        dim = q.shape[-1]
        if dim % 2 or (self.head_dim is not None and dim != self.head_dim):
            raise ValueError(f"positional encoder 'rope' expects head_dim {self.head_dim or 'even'}, got {dim}")
        t = q.shape[-2]
        pos, needed = span("rope", positions, t)
        cos, sin = self._tables(needed, dim, q.device)
        cos, sin = lookup(cos, pos, t).to(q.dtype), lookup(sin, pos, t).to(q.dtype)  # (T, hd) or (B, T, hd)
        if pos is not None and pos.dim() == 2:
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, hd): broadcast over heads
        turn = _rotate_half if self.convention == "rotate-half" else _rotate_pairs
        return q * cos + turn(q) * sin, k * cos + turn(k) * sin


def build(config: RopeConfig) -> RotaryPositions:
    head_dim = None
    if config.embed_dim is not None and config.heads is not None:
        if config.embed_dim % config.heads:
            raise ValueError(
                f"positional_encoder 'rope': embed_dim {config.embed_dim} is not divisible by heads {config.heads}"
            )
        head_dim = config.embed_dim // config.heads
    return RotaryPositions(head_dim, config.max_positions, config.base, config.convention)
