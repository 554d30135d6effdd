"""Data order as a pure function of (seed, epoch, sample index), striped across ranks.

The training stream is the concatenation of epoch permutations; optimizer step ``s`` takes the global
positions ``[s*B, (s+1)*B)`` of that stream, whatever the rank count. Position ``j`` of a step's batch goes
to rank ``j % world``, so the set of samples in every step is the same on 1, 2 or 4 ranks, and a run
resumes from its consumed-sample count on any rank count that divides the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np

__all__ = ["StripedBatchSampler", "epoch_order", "global_indices", "rank_micro_batches"]


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of ``range(n)`` for one epoch; depends on nothing but its arguments."""
    if n < 1:
        raise ValueError(f"cannot order an empty dataset (n={n})")
    # SeedSequence mixes (seed, epoch) into independent streams; PCG64's output is fixed across numpy versions.
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch])))
    return rng.permutation(n)


@lru_cache(maxsize=4)
def _cached_order(n: int, seed: int, epoch: int) -> np.ndarray:
    order = epoch_order(n, seed, epoch)
    order.setflags(write=False)
    return order


def global_indices(n: int, seed: int, start: int, count: int) -> list[int]:
    """Dataset indices at global stream positions ``[start, start + count)``; crosses epochs as needed."""
    out: list[int] = []
    pos = start
    end = start + count
    while pos < end:
        epoch, offset = divmod(pos, n)
        take = min(n - offset, end - pos)
        out.extend(int(i) for i in _cached_order(n, seed, epoch)[offset : offset + take])
        pos += take
    return out


def rank_micro_batches(
    n: int, seed: int, step: int, batch_size: int, micro_batch_size: int, rank: int, world_size: int
) -> list[list[int]]:
    """This rank's micro-batches (lists of dataset indices) for optimizer step ``step`` (0-based)."""
    if batch_size % (micro_batch_size * world_size):
        raise ValueError(
            f"batch_size {batch_size} does not split into micro-batches of {micro_batch_size} on {world_size} ranks"
        )
    batch = global_indices(n, seed, step * batch_size, batch_size)
    mine = batch[rank::world_size]  # striping: position j of the step's batch goes to rank j % world
    return [mine[i : i + micro_batch_size] for i in range(0, len(mine), micro_batch_size)]


class StripedBatchSampler:
    """A DataLoader ``batch_sampler`` yielding this rank's micro-batches from a consumed-sample count on."""

    def __init__(
        self,
        n: int,
        *,
        seed: int,
        batch_size: int,
        micro_batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        consumed: int = 0,
        steps: int,
    ) -> None:
        if consumed % batch_size:
            raise ValueError(f"consumed sample count {consumed} is not a whole number of batches of {batch_size}")
        self.n, self.seed, self.batch_size, self.micro = n, seed, batch_size, micro_batch_size
        self.rank, self.world_size = rank, world_size
        self.first_step = consumed // batch_size
        self.steps = steps

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.first_step, self.steps):
            yield from rank_micro_batches(
                self.n, self.seed, step, self.batch_size, self.micro, self.rank, self.world_size
            )

    def __len__(self) -> int:
        per_step = self.batch_size // (self.micro * self.world_size)
        return max(self.steps - self.first_step, 0) * per_step
