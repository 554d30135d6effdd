"""Data order: a pure function of (seed, epoch, index), striped so any rank count sees the same batches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry_core.training import StripedBatchSampler, epoch_order, global_indices, rank_micro_batches


def test_epoch_order_is_a_pure_permutation() -> None:
    a = epoch_order(100, seed=3, epoch=0)
    assert sorted(a.tolist()) == list(range(100))
    assert np.array_equal(a, epoch_order(100, seed=3, epoch=0))
    assert not np.array_equal(a, epoch_order(100, seed=3, epoch=1))
    assert not np.array_equal(a, epoch_order(100, seed=4, epoch=0))
    with pytest.raises(ValueError, match="empty dataset"):
        epoch_order(0, 0, 0)


def test_stream_crosses_epochs() -> None:
    n = 10
    stream = global_indices(n, seed=1, start=5, count=20)  # the tail of epoch 0, all of epoch 1, head of 2
    expect = [*epoch_order(n, 1, 0)[5:], *epoch_order(n, 1, 1), *epoch_order(n, 1, 2)[:5]]
    assert stream == [int(i) for i in expect]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 50),
    seed=st.integers(0, 2**31),
    step=st.integers(0, 20),
    world=st.sampled_from([1, 2, 4]),
    micro=st.sampled_from([1, 2]),
)
def test_every_rank_count_takes_the_same_samples_per_step(n: int, seed: int, step: int, world: int, micro: int) -> None:
    batch = 8
    one = global_indices(n, seed, step * batch, batch)
    per_rank = [rank_micro_batches(n, seed, step, batch, micro, r, world) for r in range(world)]
    assert all(len(mb) == micro for parts in per_rank for mb in parts)
    assert sorted(i for parts in per_rank for mb in parts for i in mb) == sorted(one)
    # striping: rank r holds batch positions r, r + world, ...
    assert [i for mb in per_rank[1 % world] for i in mb] == one[1 % world :: world]


def test_sampler_resumes_from_consumed_count_on_another_rank_count() -> None:
    n, seed, batch, steps = 37, 5, 8, 9
    # Steps 0-3 ran on 2 ranks (32 samples consumed); steps 4-8 resume on 1 rank and on 4 ranks.
    two = [
        StripedBatchSampler(n, seed=seed, batch_size=batch, micro_batch_size=2, rank=r, world_size=2, steps=4)
        for r in range(2)
    ]
    first = [list(s) for s in two]
    assert len(first[0]) == len(two[0]) == 8  # 4 steps x 2 accumulation micro-batches
    one = list(StripedBatchSampler(n, seed=seed, batch_size=batch, micro_batch_size=8, consumed=32, steps=steps))
    four = [
        list(
            StripedBatchSampler(
                n, seed=seed, batch_size=batch, micro_batch_size=1, rank=r, world_size=4, consumed=32, steps=steps
            )
        )
        for r in range(4)
    ]
    for k in range(steps - 4):
        from_four = sorted(i for r in range(4) for mb in four[r][2 * k : 2 * k + 2] for i in mb)
        assert sorted(one[k]) == from_four == sorted(global_indices(n, seed, (4 + k) * batch, batch))
    earlier = sorted(i for r in range(2) for mb in first[r] for i in mb)
    assert earlier == sorted(global_indices(n, seed, 0, 32))


def test_sampler_rejects_partial_batches() -> None:
    with pytest.raises(ValueError, match="consumed sample count 12 is not a whole number of batches of 8"):
        StripedBatchSampler(20, seed=0, batch_size=8, micro_batch_size=4, consumed=12, steps=3)
    with pytest.raises(ValueError, match="does not split"):
        rank_micro_batches(20, 0, 0, 8, 3, 0, 1)
