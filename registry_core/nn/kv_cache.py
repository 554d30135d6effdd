"""Preallocated key/value caches for incremental decoding: one batch of sequences written together (``KVCache``),
or independent sequences in slots, each of its own length (``SlotKVCache``, continuous batching)."""

from __future__ import annotations

import torch

__all__ = ["KVCache", "SlotKVCache"]


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


class SlotKVCache:
    """Keys and values of independent sequences, one per slot, each of its own length: continuous batching.

    A request takes a free slot, fills it from column 0 through :meth:`row` (its prompt, in chunks if it likes)
    and then decodes with the others through :meth:`step`, one token per slot written at that slot's own length.
    In every slot a token's position is its column, so an attention-bias encoder reads key positions 0..k-1 (the
    views' ``positions`` stay None) and a rotary or additive one is given each slot's position explicitly.
    """

    def __init__(
        self,
        layers: int,
        slots: int,
        heads: int,
        capacity: int,
        head_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        if capacity < 1 or slots < 1:
            raise ValueError(f"a slot KV cache needs >= 1 slot and capacity >= 1, got {slots} and {capacity}")
        shape = (layers, slots, heads, capacity, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.capacity = capacity
        #: Tokens stored in each slot.
        self.lengths = [0] * slots

    @classmethod
    def like(cls, cache: KVCache, slots: int, capacity: int) -> SlotKVCache:
        """A slot cache with the layers, heads, head size, dtype and device of ``cache`` (e.g. a backbone's
        ``new_cache(1, 1)``)."""
        layers, _, heads, _, head_dim = cache.keys.shape
        return cls(layers, slots, heads, capacity, head_dim, dtype=cache.keys.dtype, device=cache.keys.device)

    def free(self, slot: int) -> None:
        """Forget what ``slot`` holds (its buffers are overwritten by the next sequence)."""
        self.lengths[slot] = 0

    def row(self, slot: int) -> _SlotRow:
        """A one-row cache over ``slot`` for a forward pass of ``(1, T)`` tokens continuing it (prefill)."""
        return _SlotRow(self, slot)

    def rows(self, slots: list[int], lengths: list[int]) -> _SlotRows:
        """A cache over empty ``slots`` for one forward pass of ``(len(slots), T)`` right-padded prompts of
        ``lengths`` real tokens (a batched prefill); each slot then holds its own length (its padding is never
        attended to: decoding overwrites it, and a step's ``keep`` ends at each slot's length)."""
        busy = [s for s in slots if self.lengths[s]]
        if busy:
            raise ValueError(f"a batched prefill needs empty slots; slot {busy[0]} holds {self.lengths[busy[0]]} tokens")
        return _SlotRows(self, slots, lengths)

    def step(self, active: list[int]) -> _SlotStep:
        """The cache of one decoding step over slots ``0 .. max(active)``: a ``(max(active) + 1, 1)`` input, one
        token per slot; only ``active`` slots are written (the other rows' outputs are to be ignored)."""
        if not active:
            raise ValueError("a decoding step needs at least one active slot")
        return _SlotStep(self, sorted(active))


class _SlotRow:
    """One slot seen as a batch-1 :class:`KVCache` (the interface ``Transformer.forward`` uses)."""

    def __init__(self, cache: SlotKVCache, slot: int) -> None:
        self.cache, self.slot = cache, slot
        self.capacity = cache.capacity

    @property
    def length(self) -> int:
        return self.cache.lengths[self.slot]

    @property
    def positions(self) -> None:
        return None  # a token's position is its column

    @positions.setter
    def positions(self, value: object) -> None:
        pass

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, t = self.length, k.shape[2]
        end = start + t
        if end > self.capacity:
            raise ValueError(f"KV cache slot {self.slot} is full: {start} cached + {t} new tokens > capacity "
                             f"{self.capacity}")
        s = self.slot
        self.cache.keys[layer, s : s + 1, :, start:end] = k
        self.cache.values[layer, s : s + 1, :, start:end] = v
        return self.cache.keys[layer, s : s + 1, :, :end], self.cache.values[layer, s : s + 1, :, :end]

    def advance(self, tokens: int) -> None:
        self.cache.lengths[self.slot] += tokens


class _SlotRows:
    """Empty slots seen as one :class:`KVCache` for a batched prefill from column 0."""

    def __init__(self, cache: SlotKVCache, slots: list[int], lengths: list[int]) -> None:
        self.cache, self.slots, self.lengths = cache, slots, lengths
        self.capacity = cache.capacity
        self.length = 0
        self._index = torch.tensor(slots, device=cache.keys.device)

    @property
    def positions(self) -> None:
        return None

    @positions.setter
    def positions(self, value: object) -> None:
        pass

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = k.shape[2]
        if t > self.capacity:
            raise ValueError(f"a prefill of {t} tokens is more than the KV cache's capacity {self.capacity}")
        self.cache.keys[layer, self._index, :, :t] = k
        self.cache.values[layer, self._index, :, :t] = v
        return k, v  # nothing was cached before: the keys are this pass's

    def advance(self, tokens: int) -> None:
        for s, n in zip(self.slots, self.lengths, strict=True):
            self.cache.lengths[s] = n


class _SlotStep:
    """Slots ``0 .. hi - 1`` seen as one :class:`KVCache` for a decoding step: keys up to the longest slot."""

    def __init__(self, cache: SlotKVCache, active: list[int]) -> None:
        self.cache, self.active = cache, active
        self.rows = active[-1] + 1
        self.capacity = cache.capacity
        #: The longest active slot: the step's keys span ``length + 1`` columns.
        self.length = max(cache.lengths[s] for s in active)
        if self.length + 1 > self.capacity:
            raise ValueError(f"KV cache slot is full: {self.length} cached + 1 new token > capacity {self.capacity}")
        device = cache.keys.device
        self._index = torch.tensor(active, device=device)
        self._columns = torch.tensor([cache.lengths[s] for s in active], device=device)
        #: Every row active and of one length (a lone request, or requests that started together): the step
        #: writes one column of a slice and needs no mask, as a plain KVCache would.
        self.uniform = active == list(range(self.rows)) and all(cache.lengths[s] == self.length for s in active)

    @property
    def positions(self) -> None:
        return None

    @positions.setter
    def positions(self, value: object) -> None:
        pass

    def keep(self) -> torch.Tensor | None:
        """``(rows, length + 1)``: True at the keys each row may attend to (its own tokens and the new one); None
        when that is every key of every row."""
        if self.uniform:
            return None
        columns = torch.arange(self.length + 1, device=self.cache.keys.device)
        lengths = torch.zeros(self.rows, dtype=torch.long, device=columns.device)
        lengths[self._index] = self._columns
        return columns[None, :] <= lengths[:, None]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if k.shape[0] != self.rows or k.shape[2] != 1:
            raise ValueError(f"a decoding step takes ({self.rows}, 1) tokens, got ({k.shape[0]}, {k.shape[2]})")
        end = self.length + 1
        if self.uniform:
            self.cache.keys[layer, : self.rows, :, self.length : end] = k
            self.cache.values[layer, : self.rows, :, self.length : end] = v
        else:
            self.cache.keys[layer, self._index, :, self._columns] = k[self._index, :, 0]
            self.cache.values[layer, self._index, :, self._columns] = v[self._index, :, 0]
        return self.cache.keys[layer, : self.rows, :, :end], self.cache.values[layer, : self.rows, :, :end]

    def advance(self, tokens: int) -> None:
        for s in self.active:
            self.cache.lengths[s] += tokens
