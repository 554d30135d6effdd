"""The shared transformer of registry_core.nn: masks, KV cache, blocks, the stack, and import hygiene."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest
import torch
from torch import nn

from registry_core.nn import KVCache, SlotKVCache, Transformer, attention_mask

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class OffsetPositions(nn.Module):
    """A minimal additive encoder (a real one: position * a learned vector), used to exercise the dispatch."""

    mode = "additive"
    grid = 1

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.vec = nn.Parameter(torch.randn(dim) * 0.1)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        if positions is None:  # the stack leaves the default to the encoder unless a cache sets an offset
            positions = torch.arange(x.shape[1])
        return x + positions.float()[..., None] * self.vec


def _stack(causal: bool, **kw: object) -> Transformer:
    torch.manual_seed(0)
    opts: dict = {"mlp_ratio": 2.0, "init_std": 0.2, **kw}
    return Transformer(32, 2, 4, causal=causal, **opts).eval()


def test_registry_core_does_not_import_torch() -> None:
    code = "import sys, registry_core; registry_core.get_registry(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_mask_fast_paths() -> None:
    assert attention_mask(5, 5, causal=True) == (None, True)
    assert attention_mask(1, 9, causal=True) == (None, False)  # one decoded token sees the whole cache
    assert attention_mask(5, 5, causal=False) == (None, False)


def test_mask_with_cache_offset_is_bottom_right_aligned() -> None:
    mask, is_causal = attention_mask(2, 5, causal=True)
    assert not is_causal and mask is not None
    expected = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)


def test_mask_keep_and_bias_combine() -> None:
    bias = -torch.arange(3.0).expand(2, 3, 3)  # (H, q, k)
    keep = torch.tensor([[True, True, False], [False, True, True]])
    mask, _ = attention_mask(3, 3, causal=True, bias=bias, keep=keep)
    assert mask is not None and mask.shape == (2, 2, 3, 3)
    assert mask[0, 0, 2, 2] == float("-inf")  # padded key
    assert mask[0, 0, 0, 1] == float("-inf")  # future key
    assert mask[0, 1, 2, 1] == -1.0  # bias kept where allowed
    # Row 0 of sample 1 may see nothing (its only visible key is padding): it sees everything instead.
    assert torch.isfinite(mask[1, 0, 0]).all()


def test_mask_keep_wrong_length() -> None:
    with pytest.raises(ValueError, match="keep mask covers 4 tokens"):
        attention_mask(3, 3, causal=False, keep=torch.ones(1, 4, dtype=torch.bool))


def test_kv_cache_fills_in_place_and_refuses_overflow() -> None:
    cache = KVCache(2, 1, 2, 4, 3)
    k = torch.ones(1, 2, 3, 3)
    ks, vs = cache.update(0, k, 2 * k)
    assert ks.shape == (1, 2, 3, 3) and torch.equal(vs, 2 * k)
    cache.advance(3)
    with pytest.raises(ValueError, match="KV cache is full"):
        cache.update(0, k, k)
    cache.reset()
    assert cache.length == 0


def test_causal_stack_ignores_the_future() -> None:
    model = _stack(True)
    x = torch.randn(2, 8, 32)
    y = x.clone()
    y[:, 5:] = torch.randn(2, 3, 32)
    pos = OffsetPositions(32)
    a, b = model(x, pos), model(y, pos)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_bidirectional_stack_sees_the_future() -> None:
    model = _stack(False)
    x = torch.randn(1, 6, 32)
    y = x.clone()
    y[:, -1] = torch.randn(1, 32)
    assert not torch.allclose(model(x)[:, 0], model(y)[:, 0])


def test_keep_mask_equals_dropping_the_tokens() -> None:
    """Masked-out tokens change nothing for the kept ones: the ViT's variable token counts rely on it."""
    model = _stack(False)
    x = torch.randn(1, 7, 32)
    keep = torch.tensor([[True, True, True, True, False, False, False]])
    padded = model(x, keep=keep)[:, :4]
    alone = model(x[:, :4])
    assert torch.allclose(padded, alone, atol=1e-5)


def test_cached_forward_matches_full_forward() -> None:
    model = _stack(True, max_positions=16)
    pos = OffsetPositions(32)
    x = torch.randn(1, 10, 32)
    full = model(x, pos)
    cache = model.new_cache(1, 16)
    parts = [model(x[:, :6], pos, cache=cache)]
    parts += [model(x[:, i : i + 1], pos, cache=cache) for i in range(6, 10)]
    assert cache.length == 10
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)


def test_slot_cache_rows_decode_as_if_each_sequence_ran_alone() -> None:
    """Three sequences in slots: two prefilled together (right-padded), one chunk by chunk; decoding steps over all
    of them, one with fewer steps (a slot that waits), give each sequence's own full forward."""
    model = _stack(True, max_positions=16)
    pos = OffsetPositions(32)
    torch.manual_seed(1)
    seqs = [torch.randn(1, n, 32) for n in (7, 4, 9)]
    full = [model(s, pos) for s in seqs]
    slots = SlotKVCache.like(model.new_cache(1, 1), 3, 16)
    padded = torch.zeros(2, 4, 32)
    padded[0], padded[1] = seqs[0][0, :4], seqs[1][0]  # slot 0 starts with its first 4 tokens, slot 1 whole
    out = model(padded, pos, cache=slots.rows([0, 1], [4, 4]))
    assert torch.allclose(out[1], full[1][0], atol=1e-5) and slots.lengths[:2] == [4, 4]
    assert torch.allclose(model(seqs[2][:, :5], pos, cache=slots.row(2)), full[2][:, :5], atol=1e-5)
    assert torch.allclose(model(seqs[2][:, 5:6], pos, cache=slots.row(2)), full[2][:, 5:6], atol=1e-5)
    assert slots.lengths == [4, 4, 6]
    for t in range(3):  # slots 0 and 2 step together from different lengths; slot 1 sits out
        x = torch.zeros(3, 1, 32)
        x[0], x[2] = seqs[0][0, 4 + t], seqs[2][0, 6 + t]
        step = slots.step([0, 2])
        assert not step.uniform
        positions = torch.tensor([[4 + t], [0], [6 + t]])
        y = model(x, pos, positions, keep=step.keep(), cache=step)
        assert torch.allclose(y[0, 0], full[0][0, 4 + t], atol=1e-5)
        assert torch.allclose(y[2, 0], full[2][0, 6 + t], atol=1e-5)
    assert slots.lengths == [7, 4, 9]
    slots.free(1)
    with pytest.raises(ValueError, match="needs empty slots; slot 0 holds 7 tokens"):
        slots.rows([0, 1], [2, 2])


def test_too_long_and_wrong_width_are_clear_errors() -> None:
    model = _stack(True, max_positions=4)
    with pytest.raises(ValueError, match="longer than max_positions 4"):
        model(torch.randn(1, 5, 32))
    with pytest.raises(ValueError, match="embed_dim 32"):
        model(torch.randn(1, 3, 16))
    with pytest.raises(ValueError, match="not divisible"):
        Transformer(30, 1, 4, causal=True)


def test_init_counts_and_flops() -> None:
    depth = 4
    model = Transformer(64, depth, 4, causal=True)
    blk: Any = model.blocks[0]
    assert blk.attn.qkv.bias is not None and torch.count_nonzero(blk.attn.qkv.bias) == 0
    assert abs(blk.mlp.fc.weight.std().item() - 0.02) < 0.003
    assert abs(blk.mlp.proj.weight.std().item() - 0.02 / math.sqrt(2 * depth)) < 0.002
    per_block = (64 * 192 + 192) + (64 * 64 + 64) + (64 * 256 + 256) + (256 * 64 + 64) + 4 * 64
    assert model.num_parameters() == depth * per_block + 2 * 64
    assert model.flops_per_token(128) == 6 * model.num_parameters() + 12 * depth * 64 * 128
    assert model.flops_per_token(128, extra_params=10) == model.flops_per_token(128) + 60


def test_backward_runs_with_dropout_in_training() -> None:
    model = Transformer(32, 2, 4, causal=True, dropout=0.1).train()
    out = model(torch.randn(2, 5, 32, requires_grad=True))
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
