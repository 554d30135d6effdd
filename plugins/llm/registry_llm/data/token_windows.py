"""Fixed-length training windows over token shards, read with ``os.pread`` so memory stays flat.

The shards of a build form one token stream. A split is a token range of it; window ``i`` of a split
starts ``i * seq_len`` tokens in and reads ``seq_len + 1`` tokens (inputs, and targets shifted by one),
crossing shard boundaries when it must. Reads copy just those bytes: no memory map is kept, so the
resident set does not grow with the number of windows visited (a long-lived ``np.memmap`` keeps every
touched page mapped). File descriptors are opened per process, so DataLoader workers get their own.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from registry_llm.data.shard_files import ShardInfo

__all__ = ["TokenLoader", "TokenStream", "TokenWindows"]


class TokenStream:
    """Random access to the concatenated tokens of ``shards`` (a build's ``.bin`` files)."""

    def __init__(self, out: Path, shards: Sequence[ShardInfo], dtype: str) -> None:
        self.paths = [str(out / s.bin) for s in shards]
        self.dtype = np.dtype(dtype)
        sizes = [s.n_tokens for s in shards]
        self.starts = [0, *np.cumsum(sizes).tolist()]  # shard k holds tokens starts[k]:starts[k+1]
        self.n_tokens = int(self.starts[-1])
        self._fds: dict[int, int] = {}
        self._pid = -1

    def _fd(self, shard: int) -> int:
        if self._pid != os.getpid():  # a forked worker must not share the parent's file offsets/fds
            self._fds, self._pid = {}, os.getpid()
        fd = self._fds.get(shard)
        if fd is None:
            fd = self._fds[shard] = os.open(self.paths[shard], os.O_RDONLY)
        return fd

    def read(self, start: int, count: int) -> np.ndarray:
        """Tokens ``start : start + count`` of the stream as a fresh array of the shard dtype."""
        if start < 0 or start + count > self.n_tokens:
            raise IndexError(f"tokens {start}:{start + count} lie outside the stream of {self.n_tokens} tokens")
        item = self.dtype.itemsize
        k = bisect.bisect_right(self.starts, start) - 1
        parts = []
        while count > 0:
            offset = start - self.starts[k]
            take = min(count, self.starts[k + 1] - start)
            data = os.pread(self._fd(k), take * item, offset * item)
            if len(data) != take * item:
                raise OSError(f"short read from shard {self.paths[k]}: the file changed after it was verified")
            parts.append(np.frombuffer(data, dtype=self.dtype))
            start, count, k = start + take, count - take, k + 1
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def close(self) -> None:
        if self._pid == os.getpid():
            for fd in self._fds.values():
                os.close(fd)
        self._fds = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fds"], state["_pid"] = {}, -1
        return state

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown may have torn down os already
            self.close()


class TokenWindows:
    """Map-style dataset: item ``i`` -> ``{"input_ids": LongTensor[seq_len], "targets": LongTensor[seq_len]}``.

    Deterministic by index; order, striping over ranks and resume belong to the trainer's sampler.
    """

    def __init__(self, stream: TokenStream, begin: int, end: int, seq_len: int, split: str) -> None:
        self.stream, self.begin, self.end, self.seq_len, self.split = stream, begin, end, seq_len, split
        self._len = max(0, (end - begin - 1) // seq_len)

    def __len__(self) -> int:
        return self._len

    @property
    def n_tokens(self) -> int:
        return self.end - self.begin

    def window(self, index: int) -> np.ndarray:
        """The ``seq_len + 1`` tokens of window ``index`` as int64."""
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"window {index} out of range for the {self.split} split ({self._len} windows)")
        return self.stream.read(self.begin + index * self.seq_len, self.seq_len + 1).astype(np.int64)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch  # deferred: building and reading shards needs no torch

        w = torch.from_numpy(self.window(index))
        return {"input_ids": w[:-1], "targets": w[1:]}


class TokenLoader:
    """Random-window batches straight from the shards, ``get_batch() -> (x, y)`` of shape (B, T).

    Like the usual numpy-memmap ``get_batch`` (uniform random start tokens, a seeded generator) but
    with ``pread`` reads, so its memory stays flat over any number of batches.
    """

    def __init__(self, windows: TokenWindows, batch_size: int, seed: int = 0) -> None:
        self.windows, self.batch_size = windows, batch_size
        self.rng = np.random.default_rng(seed)
        self._high = windows.n_tokens - windows.seq_len - 1
        if self._high <= 0:
            raise ValueError(f"the {windows.split} split has {windows.n_tokens} tokens, fewer than seq_len + 1")

    def get_batch(self) -> tuple[Any, Any]:
        import torch

        w, t = self.windows, self.windows.seq_len
        starts = self.rng.integers(0, self._high, size=self.batch_size) + w.begin
        block = np.stack([w.stream.read(int(s), t + 1) for s in starts]).astype(np.int64)  # (B, T+1)
        batch = torch.from_numpy(block)
        return batch[:, :-1], batch[:, 1:]
