"""A per-process LRU of decoded Zarr chunks, bounded in bytes, for reading many small windows.

Neighbouring chips share chunks, and decoding a chunk costs far more than copying out of it, so chips
read through the cache decode each chunk once while it stays cached. A miss reads the chunk-aligned box
around the window in one zarr call (zarr decodes its chunks concurrently) and caches every chunk of it.
Each DataLoader worker builds its own cache: nothing is shared between processes.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any

import numpy as np

__all__ = ["ChunkCache"]


class ChunkCache:
    """Decoded chunks of named zarr arrays, least recently used first out once over ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._chunks: OrderedDict[tuple[str, tuple[int, ...]], np.ndarray] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def _put(self, key: tuple[str, tuple[int, ...]], chunk: np.ndarray) -> None:
        if chunk.nbytes > self.max_bytes:
            return
        old = self._chunks.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._chunks[key] = chunk
        self._bytes += chunk.nbytes
        while self._bytes > self.max_bytes:
            _, evicted = self._chunks.popitem(last=False)
            self._bytes -= evicted.nbytes

    def read(self, name: str, array: Any, selection: tuple[slice, ...]) -> np.ndarray:
        """``array[selection]`` (one in-bounds slice per dimension, step 1) through the cache."""
        if self.max_bytes <= 0:
            return np.asarray(array[selection])
        chunks, shape = tuple(array.chunks), tuple(array.shape)
        first = [s.start // c for s, c in zip(selection, chunks)]
        last = [(s.stop - 1) // c for s, c in zip(selection, chunks)]
        ids = list(itertools.product(*(range(a, b + 1) for a, b in zip(first, last))))
        if all((name, i) in self._chunks for i in ids):
            self.hits += len(ids)
            out = np.empty(tuple(s.stop - s.start for s in selection), dtype=array.dtype)
            for i in ids:
                chunk = self._chunks[(name, i)]
                self._chunks.move_to_end((name, i))
                # the overlap of this chunk and the selection, in chunk and in output coordinates
                lo = [max(s.start, k * c) for s, k, c in zip(selection, i, chunks)]
                hi = [min(s.stop, (k + 1) * c) for s, k, c in zip(selection, i, chunks)]
                src = tuple(slice(a - k * c, b - k * c) for a, b, k, c in zip(lo, hi, i, chunks))
                dst = tuple(slice(a - s.start, b - s.start) for a, b, s in zip(lo, hi, selection))
                out[dst] = chunk[src]
            return out
        self.misses += len(ids)
        box = tuple(slice(a * c, min(n, (b + 1) * c)) for a, b, c, n in zip(first, last, chunks, shape))
        data = np.asarray(array[box])
        for i in ids:
            part = tuple(slice((k - a) * c, (k - a + 1) * c) for k, a, c in zip(i, first, chunks))
            self._put((name, i), data[part].copy())  # a copy, so the box itself is freed
        window = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(selection, box))
        return data[window]
