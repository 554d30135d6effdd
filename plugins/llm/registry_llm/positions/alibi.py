"""``alibi``: per-head linear distance penalties added to attention scores (Press et al. 2022)."""

from __future__ import annotations

import math

import torch
from torch import nn

from registry_llm.positions._positions import DEFAULT_MAX_POSITIONS
from registry_llm.positions.specs import AlibiConfig


def alibi_slopes(heads: int) -> list[float]:
    """The paper's slopes: ``2^(-8i/n)`` for ``n`` a power of two; otherwise those of the nearest lower
    power of two ``m`` followed by every other slope of ``2m`` (the authors' reference rule)."""

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if heads & (heads - 1) == 0:
        return power_of_two(heads)
    m = 2 ** math.floor(math.log2(heads))
    return power_of_two(m) + power_of_two(2 * m)[0::2][: heads - m]


class AlibiPositions(nn.Module):
    """``bias(q_len, k_len) -> (heads, q_len, k_len)``: ``-slope_h * |i - j|``, used as the SDPA mask.

    The queries are the last ``q_len`` of ``k_len`` positions (earlier keys come from a KV cache). The
    distance is symmetric, so the same bias serves a causal decoder (future keys are masked anyway) and
    a bidirectional encoder.
    """

    mode = "attention_bias"
    grid = 1
    slopes: torch.Tensor

    def __init__(self, heads: int, max_positions: int | None = None):
        super().__init__()
        self.heads = heads
        self.max_positions = max_positions or DEFAULT_MAX_POSITIONS
        self.register_buffer("slopes", torch.tensor(alibi_slopes(heads), dtype=torch.float32), persistent=False)

    def bias(self, q_len: int, k_len: int) -> torch.Tensor:
        if q_len > k_len:
            raise ValueError(f"alibi bias: {q_len} queries cannot be more than {k_len} keys")
        device = self.slopes.device
        i = torch.arange(k_len - q_len, k_len, device=device).unsqueeze(1)
        j = torch.arange(k_len, device=device).unsqueeze(0)
        distance = (i - j).abs().float()  # (q, k)
        return -self.slopes[:, None, None] * distance  # (H, q, k)


def build(config: AlibiConfig) -> AlibiPositions:
    if config.heads is None:
        raise ValueError("positional_encoder 'alibi': heads is not set; pass heads=... or compose it with a backbone")
    return AlibiPositions(config.heads, config.max_positions)
