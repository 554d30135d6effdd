"""rope-2d for real: q·k depends only on the 2-D offset; MAE's dropped tokens and the cls token are handled."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from registry_core import Registry
from registry_core.nn import grid_positions
from registry_geoextras.rope2d import Rope2D
from registry_gfm import Placement


@pytest.fixture
def rope(registry: Registry) -> Rope2D:
    built: Rope2D = registry.build("positional_encoder", "rope-2d", embed_dim=32, heads=2)  # head_dim 16
    return built


def scores(rope: Rope2D, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    qr, kr = rope.rotate(q, k, positions)
    return qr @ kr.transpose(-1, -2)  # (B, H, T, T)


def test_q_dot_k_depends_only_on_the_2d_offset(rope: Rope2D) -> None:
    gen = torch.Generator().manual_seed(0)
    pos = grid_positions((4, 5))  # (20, 2) (row, column)
    q, k = torch.randn(2, 2, 20, 16, generator=gen), torch.randn(2, 2, 20, 16, generator=gen)
    base = scores(rope, q, k, pos)
    for shift in ((3, 0), (0, 7), (11, 5)):
        torch.testing.assert_close(scores(rope, q, k, pos + torch.tensor(shift)), base, rtol=1e-4, atol=1e-4)
    # One query and key vector at offsets (0, 1) and (1, 0): rows and columns are told apart (not one 1-D axis).
    one_q, one_k = q[:1, :1, :1], k[:1, :1, :1]

    def at(*cells: tuple[int, int]) -> torch.Tensor:
        return scores(rope, one_q.expand(1, 1, 2, 16), one_k.expand(1, 1, 2, 16), torch.tensor(cells))

    assert not torch.allclose(at((0, 0), (0, 1))[..., 0, 1], at((0, 0), (1, 0))[..., 0, 1])
    # And the same offset anywhere gives the same score.
    torch.testing.assert_close(at((0, 0), (0, 1))[..., 0, 1], at((5, 9), (5, 10))[..., 0, 1], rtol=1e-4, atol=1e-4)


def test_placement_and_tensors_give_the_same_rotation(rope: Rope2D) -> None:
    q = torch.randn(1, 2, 6, 16)
    hw = grid_positions((2, 3))
    thw = torch.cat([torch.zeros(6, 1, dtype=torch.long), hw], dim=1)  # the tokenizer's (t, h, w)
    torch.testing.assert_close(rope.rotate(q, q, Placement(thw))[0], rope.rotate(q, q, hw)[0])


@pytest.fixture
def vit(registry: Registry) -> torch.nn.Module:
    torch.manual_seed(0)
    return registry.build("backbone", "vit", embed_dim=32, depth=2, heads=2, cls_token=True).eval()


def test_the_vit_keeps_each_kept_token_at_its_own_position(vit: torch.nn.Module, rope: Rope2D) -> None:
    """MAE drops tokens before the blocks: with keep_index the kept tokens must be rotated by their own cells."""
    gen = torch.Generator().manual_seed(1)
    where = Placement(torch.cat([torch.zeros(16, 1, dtype=torch.long), grid_positions((4, 4))], dim=1))
    x = torch.randn(2, 16, 32, generator=gen)
    keep = torch.stack([torch.randperm(16, generator=gen)[:4] for _ in range(2)])  # (B, 4), any order
    with torch.no_grad():
        dropped = vit(x, rope, where, keep_index=keep)  # (B, 1 + 4, D), cls first
        for b in range(2):
            alone = vit(x[b:b + 1, keep[b]], rope, Placement(where.positions[keep[b]]))
            torch.testing.assert_close(dropped[b:b + 1], alone, rtol=1e-5, atol=1e-5)
        # Rotated by the wrong cells (as if the kept tokens were the first four), the output differs.
        wrong = vit(x[:1, keep[0]], rope, Placement(where.positions[:4]))
    assert not torch.allclose(dropped[:1], wrong, atol=1e-4)


def test_without_cls_the_whole_encoder_is_translation_invariant(registry: Registry, rope: Rope2D) -> None:
    """Every patch pair sees only its offset: shifting the whole grid changes no output. (A cls token is not
    rotated, so its scores with the patches see their absolute positions, and this holds no longer.)"""
    torch.manual_seed(0)
    vit = registry.build("backbone", "vit", embed_dim=32, depth=2, heads=2, cls_token=False).eval()
    x = torch.randn(1, 12, 32, generator=torch.Generator().manual_seed(2))
    pos = grid_positions((3, 4))
    with torch.no_grad():
        out = vit(x, rope, pos)
        shifted = vit(x, rope, pos + torch.tensor([6, 2]))
    assert out.shape == (1, 12, 32)
    torch.testing.assert_close(shifted, out, rtol=1e-4, atol=1e-4)


def test_the_cls_token_is_not_rotated(vit: torch.nn.Module, rope: Rope2D) -> None:
    """The backbone hands rope-2d the patch tokens only: the cls row of q and k comes through unchanged."""
    seen: list[int] = []
    rotate = rope.rotate

    def spy(q: torch.Tensor, k: torch.Tensor, positions: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(q.shape[-2])
        return rotate(q, k, positions)

    rope.rotate = spy  # type: ignore[method-assign]  # observe the real rotation
    with torch.no_grad():
        out = vit(torch.randn(1, 6, 32), rope, grid_positions((2, 3)))
    assert out.shape == (1, 7, 32) and seen == [6, 6]  # 1 cls + 6 patches in, 6 rotated, in each of 2 blocks


def test_positions_are_required_and_checked(rope: Rope2D) -> None:
    q = torch.randn(1, 2, 4, 16)
    with pytest.raises(ValueError, match="needs the patch positions"):
        rope.rotate(q, q, None)
    with pytest.raises(ValueError, match="positions must be"):
        rope.rotate(q, q, torch.zeros(4, 5))
    with pytest.raises(ValueError, match="cover 3 tokens, attention has 4"):
        rope.rotate(q, q, grid_positions((1, 3)))
    with pytest.raises(ValueError, match="head_dim 16"):
        rope.rotate(torch.randn(1, 2, 4, 8), torch.randn(1, 2, 4, 8), grid_positions((2, 2)))
