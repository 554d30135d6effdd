"""``alibi``: per-head linear distance penalties added to attention scores (Press et al. 2022)."""

from __future__ import annotations

import math

import torch
from torch import nn

from registry_core.nn import token_positions
from registry_llm.positions.specs import DEFAULT_MAX_POSITIONS, AlibiConfig


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
    """``bias(q_positions, k_positions) -> (heads, q, k)``: ``-slope_h * |p_i - p_j|``, used as the SDPA mask.

    Positions are 1-D ids ``(T,)`` or ``(B, T)`` (the latter give ``(B, heads, q, k)``); the transformer
    passes this pass's tokens as queries and every key, cached ones included. The distance is symmetric,
    so the same bias serves a causal decoder (future keys are masked anyway) and a bidirectional encoder.
    Two ints ``bias(q_len, k_len)`` mean contiguous positions, the queries being the last ``q_len`` keys.
    """

    mode = "attention_bias"
    grid = 1
    slopes: torch.Tensor

    def __init__(self, heads: int, max_positions: int | None = None):
        super().__init__()
        self.heads = heads
        self.max_positions = max_positions or DEFAULT_MAX_POSITIONS
        self.register_buffer("slopes", torch.tensor(alibi_slopes(heads), dtype=torch.float32), persistent=False)

    def bias(self, q_positions: torch.Tensor | int, k_positions: torch.Tensor | int) -> torch.Tensor:
        device = self.slopes.device
        if isinstance(q_positions, int) and isinstance(k_positions, int):
            q_len, k_len = q_positions, k_positions
            if q_len > k_len:
                raise ValueError(f"alibi bias: {q_len} queries cannot be more than {k_len} keys")
            q_positions, k_positions = torch.arange(k_len - q_len, k_len), torch.arange(k_len)
        if not isinstance(q_positions, torch.Tensor) or not isinstance(k_positions, torch.Tensor):
            raise ValueError("alibi bias: give query and key positions as two tensors (or two lengths)")
        i = token_positions("alibi", q_positions, 1).to(device).unsqueeze(-1)  # (q, 1) or (B, q, 1)
        j = token_positions("alibi", k_positions, 1).to(device).unsqueeze(-2)  # (1, k) or (B, 1, k)
        distance = (i - j).abs().float()  # (q, k) or (B, q, k)
        slopes = self.slopes[:, None, None]  # (H, 1, 1)
        if distance.dim() == 3:
            return -slopes * distance.unsqueeze(1)  # (B, H, q, k)
        return -slopes * distance  # (H, q, k)


def build(config: AlibiConfig) -> AlibiPositions:
    if config.heads is None:
        raise ValueError("positional_encoder 'alibi': heads is not set; pass heads=... or compose it with a backbone")
    return AlibiPositions(config.heads, config.max_positions)
