"""A preallocated key/value cache for incremental decoding: one buffer per layer, filled in place."""

from __future__ import annotations

import torch

__all__ = ["KVCache"]


class KVCache:
    """Keys and values of every layer, ``(layers, B, H, capacity, head_dim)``, written at ``length``.

    Preallocating avoids a ``torch.cat`` per decoded token (quadratic copying). A forward pass writes
    each layer's new keys/values with :meth:`update`, then the stack calls :meth:`advance` once.
    """

    def __init__(
        self,
        layers: int,
        batch: int,
        heads: int,
        capacity: int,
        head_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"KV cache capacity must be >= 1, got {capacity}")
        shape = (layers, batch, heads, capacity, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.capacity = capacity
        #: Tokens already stored (the position of the next token written).
        self.length = 0
        #: Positions of the stored keys, recorded for attention-bias encoders (None until a pass records them).
        self.positions: torch.Tensor | None = None

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k``/``v`` ``(B, H, T, hd)`` after the cached tokens; returns all keys/values so far."""
        t = k.shape[2]
        end = self.length + t
        if end > self.capacity:
            raise ValueError(f"KV cache is full: {self.length} cached + {t} new tokens > capacity {self.capacity}")
        self.keys[layer, :, :, self.length : end] = k
        self.values[layer, :, :, self.length : end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, tokens: int) -> None:
        """Mark ``tokens`` more positions as filled (after every layer has been updated)."""
        self.length += tokens

    def reset(self) -> None:
        """Forget the cached tokens (the buffers are reused, not freed)."""
        self.length = 0
        self.positions = None
