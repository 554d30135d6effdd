"""Token dropping in registry_core.nn.Transformer (the gather path), prefix tokens, and position-based biases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

from registry_core.nn import (
    Transformer,
    apply_rotary,
    attention_mask,
    axial_rotary,
    gather_tokens,
    grid_positions,
    sincos_encoding,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")

D, H, GRID = 24, 2, (3, 4)  # 12 patches of a 3 x 4 grid; head_dim 12 = 8 rows + 4 columns for axial rotary
T = GRID[0] * GRID[1]


class SinCos2d(nn.Module):
    """Additive MAE-style 2-D sin-cos positions over ``(…, T, 2)`` coordinates (default: the patch grid)."""

    mode = "additive"
    grid = 2

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        pos = grid_positions(GRID) if positions is None else positions
        return x + sincos_encoding(pos, (D // 2, D // 2), axes=(1, 0))


class Axial2d(nn.Module):
    """Axial 2-D rotary positions: rows turn 8 dims of each head, columns 4."""

    mode = "rotary"
    grid = 2

    def rotate(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor | None) -> tuple[Any, Any]:
        pos = grid_positions(GRID) if positions is None else positions
        cos, sin = axial_rotary(pos, (8, 4))  # (T, hd) or (B, T, hd)
        if cos.dim() == 3:
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, hd): broadcast over heads
        return apply_rotary(q, cos, sin, dims=(8, 4)), apply_rotary(k, cos, sin, dims=(8, 4))


class Distance1d(nn.Module):
    """A 1-D attention bias ``-slope_h * |i - j|`` (ALiBi-like), over the positions the stack passes."""

    mode = "attention_bias"
    grid = 1

    def bias(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        distance = (q.unsqueeze(-1) - k.unsqueeze(-2)).abs().float()  # (…, q, k)
        slopes = torch.tensor([0.5, 0.25])[:, None, None]
        return -slopes * (distance.unsqueeze(-3) if distance.dim() == 3 else distance)


def _stack(**kw: Any) -> Transformer:
    torch.manual_seed(0)
    return Transformer(D, 2, H, causal=False, mlp_ratio=2.0, init_std=0.2, **kw).eval()


def _keep_index(batch: int = 2, keep: int = 3) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.stack([torch.randperm(T)[:keep] for _ in range(batch)])  # (B, keep), shuffled order


def test_dropped_tokens_never_enter_the_blocks() -> None:
    model = _stack()
    seen: list[tuple[int, ...]] = []
    for block in model.blocks:
        block.register_forward_hook(lambda _m, args, _out: seen.append(tuple(args[0].shape)))
    index = _keep_index(keep=3)
    out = model(torch.randn(2, T, D), SinCos2d(), keep_index=index)
    assert out.shape == (2, 3, D)
    assert seen == [(2, 3, D)] * len(model.blocks)


@pytest.mark.parametrize("positional", [SinCos2d(), Axial2d()], ids=["additive", "rotary"])
def test_gathered_pass_equals_the_full_stack_on_the_kept_tokens(positional: nn.Module) -> None:
    """Each kept token keeps its own position: dropping = running the stack on those tokens alone."""
    model = _stack()
    x, index = torch.randn(2, T, D), _keep_index(keep=4)
    pos = grid_positions(GRID).expand(2, T, 2)
    dropped = model(x, positional, pos, keep_index=index)
    alone = model(gather_tokens(x, index), positional, gather_tokens(pos, index))
    assert torch.allclose(dropped, alone, atol=1e-5)
    wrong = model(gather_tokens(x, index), positional, pos[:, :4])  # the kept tokens at the first 4 positions
    assert not torch.allclose(dropped, wrong, atol=1e-3)


@dataclass
class Where:
    """Positions that are more than a tensor (as imagery's placement of patches, with chip metadata)."""

    cells: torch.Tensor


class AxialOfWhere(Axial2d):
    """Axial rotary over ``Where`` positions: it gathers the kept tokens' cells itself."""

    def gather_positions(self, positions: Where, index: torch.Tensor) -> torch.Tensor:
        return gather_tokens(positions.cells.expand(index.shape[0], *positions.cells.shape), index)

    def rotate(self, q: torch.Tensor, k: torch.Tensor, positions: Any) -> tuple[Any, Any]:
        return super().rotate(q, k, positions.cells if isinstance(positions, Where) else positions)


def test_an_encoder_with_gather_positions_picks_the_kept_positions_itself() -> None:
    model = _stack(prefix_tokens=1)
    x, index = torch.randn(2, T, D), _keep_index(keep=4)
    dropped = model(x, AxialOfWhere(), Where(grid_positions(GRID)), keep_index=index)
    alone = model(gather_tokens(x, index), Axial2d(), gather_tokens(grid_positions(GRID).expand(2, T, 2), index))
    assert torch.allclose(dropped, alone, atol=1e-5)
    with pytest.raises(ValueError, match="'Axial2d': keep_index needs its positions as a tensor, got Where"):
        model(x, Axial2d(), Where(grid_positions(GRID)), keep_index=index)


def test_gathered_pass_with_1d_default_positions_and_a_bias() -> None:
    model, bias = _stack(), Distance1d()
    x, index = torch.randn(2, T, D), _keep_index(keep=5)
    dropped = model(x, bias, keep_index=index)
    assert torch.allclose(dropped, model(gather_tokens(x, index), bias, index), atol=1e-5)


def test_keep_mask_is_gathered_with_the_tokens() -> None:
    model = _stack()
    x, index = torch.randn(1, T, D), torch.tensor([[5, 0, 7, 2]])
    keep = torch.ones(1, T, dtype=torch.bool)
    keep[0, 7] = False
    out = model(x, keep=keep, keep_index=index)
    assert torch.allclose(out[:, [0, 1, 3]], model(x[:, [5, 0, 2]]), atol=1e-5)


def test_prefix_tokens_come_first_and_are_never_dropped() -> None:
    model = _stack(prefix_tokens=2, prefix_positions="learned")
    assert model.num_prefix_tokens == 2
    x, index = torch.randn(2, T, D), _keep_index(keep=3)
    out = model(x, SinCos2d(), keep_index=index)
    assert out.shape == (2, 2 + 3, D)
    # The same blocks fed [prefix + its learned positions, the kept tokens with theirs] by hand:
    plain = _stack()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("prefix")})
    prefix = (model.prefix + model.prefix_pos).expand(2, -1, -1)
    by_hand = plain(torch.cat((prefix, gather_tokens(SinCos2d()(x), index)), dim=1))
    assert torch.allclose(out, by_hand, atol=1e-5)


def test_prefix_tokens_get_no_rotation_and_zero_bias() -> None:
    """To rotary and bias encoders the prefix is position-free: only the other tokens are turned or biased."""
    model = _stack(prefix_tokens=1)
    x = torch.randn(1, 5, D)
    rot = Axial2d()
    pos = grid_positions((1, 5))
    out = model(x, rot, pos)

    class Late(Axial2d):  # rotates only the tokens after the prefix, by hand
        def rotate(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor | None) -> tuple[Any, Any]:
            qr, kr = super().rotate(q[:, :, 1:], k[:, :, 1:], pos)
            return torch.cat((q[:, :, :1], qr), 2), torch.cat((k[:, :, :1], kr), 2)

    plain = _stack()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k != "prefix"})
    by_hand = plain(torch.cat((model.prefix, x), dim=1), Late())
    assert torch.allclose(out, by_hand, atol=1e-5)
    biased = model(x, Distance1d())
    assert biased.shape == (1, 6, D) and torch.isfinite(biased).all()


def test_no_prefix_means_no_new_parameters_and_the_same_init() -> None:
    base, with_prefix = _stack(), _stack(prefix_tokens=3)
    assert not any(k.startswith("prefix") for k in base.state_dict())
    assert base.num_prefix_tokens == 0
    shared = {k: v for k, v in with_prefix.state_dict().items() if k != "prefix"}
    assert shared.keys() == base.state_dict().keys()
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in shared.items())
    with pytest.raises(ValueError, match="prefix_positions must be one of none, learned"):
        Transformer(D, 1, H, causal=False, prefix_tokens=1, prefix_positions="sincos")


@pytest.mark.parametrize(
    ("index", "match"),
    [
        (torch.tensor([[0, T]]), rf"keep_index must index tokens in \[0, {T}\), got values in \[0, {T}\]"),
        (torch.tensor([[-1, 2]]), "got values in"),
        (torch.tensor([0, 1]), r"keep_index must have shape \(B=1, T_keep\), got \(2,\)"),
        (torch.tensor([[0], [1]]), r"shape \(B=1, T_keep\), got \(2, 1\)"),
        (torch.tensor([[0.0, 1.0]]), "integer token indices"),
        (torch.ones(1, T, dtype=torch.bool), "boolean mask of real tokens goes to keep="),
    ],
)
def test_bad_keep_index_is_a_clear_error(index: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _stack()(torch.randn(1, T, D), keep_index=index)


def test_keep_index_limits() -> None:
    decoder = Transformer(D, 1, H, causal=True, max_positions=T)
    with pytest.raises(ValueError, match="KV cache cannot be combined with keep_index"):
        decoder(torch.randn(1, T, D), keep_index=torch.tensor([[0]]), cache=decoder.new_cache(1, T))
    with pytest.raises(ValueError, match="2-D grid: keep_index needs its positions"):
        _stack()(torch.randn(1, T, D), Axial2d(), keep_index=torch.tensor([[0]]))
    with pytest.raises(ValueError, match=r"keep mask must be \(B, T\)"):
        _stack()(torch.randn(1, T, D), keep=torch.ones(1, 3, dtype=torch.bool), keep_index=torch.tensor([[0]]))
    with pytest.raises(ValueError, match="gather_tokens: index must be integer"):
        gather_tokens(torch.zeros(2, 3), torch.zeros(2, 1))


def test_gather_tokens_keeps_index_order() -> None:
    x = torch.arange(12.0).view(2, 3, 2)  # (B, T, 2)
    out = gather_tokens(x, torch.tensor([[2, 0], [1, 1]]))
    assert out.tolist() == [[[4.0, 5.0], [0.0, 1.0]], [[8.0, 9.0], [8.0, 9.0]]]


def test_mask_takes_a_per_sample_bias() -> None:
    bias = -torch.rand(2, H, 3, 3)  # (B, H, q, k)
    keep = torch.tensor([[True, True, False], [True, True, True]])
    mask, is_causal = attention_mask(3, 3, causal=False, bias=bias, keep=keep)
    assert mask is not None and mask.shape == (2, H, 3, 3) and not is_causal
    assert mask[0, 1, 0, 2] == float("-inf") and mask[1, 1, 0, 2] == bias[1, 1, 0, 2]
    with pytest.raises(ValueError, match=r"attention bias must be \(H, 3, 3\) or \(B, H, 3, 3\), got \(2, 3, 4\)"):
        attention_mask(3, 3, causal=False, bias=torch.zeros(2, 3, 4))


def test_cached_decoding_keeps_explicit_bias_positions() -> None:
    """The cache records its keys' positions, so a bias over explicit (gapped) positions decodes exactly."""
    torch.manual_seed(0)
    decoder = Transformer(D, 2, H, causal=True, init_std=0.2).eval()
    x, pos, bias = torch.randn(2, 6, D), torch.tensor([[0, 2, 4, 6, 8, 10], [1, 2, 3, 5, 8, 13]]), Distance1d()
    full = decoder(x, bias, pos)
    cache = decoder.new_cache(2, 6)
    steps = [decoder(x[:, :3], bias, pos[:, :3], cache=cache)]
    steps += [decoder(x[:, i : i + 1], bias, pos[:, i : i + 1], cache=cache) for i in range(3, 6)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    assert not torch.allclose(full, decoder(x, bias), atol=1e-3)  # the positions were honoured
