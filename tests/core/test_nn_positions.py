"""Position math of registry_core.nn: grids, the 1-D and N-d sin-cos encodings, rotary tables, the checks."""

from __future__ import annotations

import math

import pytest
import torch

from registry_core.nn import (
    apply_rotary,
    axial_rotary,
    check_range,
    grid_positions,
    rotary_table,
    sincos_encoding,
    sinusoid_table,
    span,
    token_positions,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_grid_positions_are_row_major() -> None:
    pos = grid_positions((2, 3))
    assert pos.dtype == torch.long and pos.shape == (6, 2)
    assert pos.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    assert grid_positions((2, 2, 2))[5].tolist() == [1, 0, 1]  # (t, h, w): 5 = 1*4 + 0*2 + 1
    with pytest.raises(ValueError, match="grid side must be >= 1"):
        grid_positions((3, 0))


def test_sinusoid_table_is_the_float64_formula() -> None:
    """Same numbers, bit for bit, as the table the LLM encoder always had (even sin, odd cos, odd dims too)."""
    for length, dim in ((7, 6), (5, 7)):
        pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)
        inv = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        ref = torch.zeros(length, dim, dtype=torch.float64)
        ref[:, 0::2] = torch.sin(pos * inv)
        ref[:, 1::2] = torch.cos(pos * inv)[:, : dim // 2]
        assert torch.equal(sinusoid_table(length, dim), ref.float())


def _mae_1d(p: float, dim: int) -> list[float]:
    """MAE's per-axis block written out by hand: ``[sin(p w_i)..., cos(p w_i)...]``, ``w_i = 1/10000^(2i/dim)``."""
    w = [1.0 / 10000 ** (2 * i / dim) for i in range(dim // 2)]
    return [math.sin(p * x) for x in w] + [math.cos(p * x) for x in w]


def test_sincos_2d_is_the_mae_layout() -> None:
    """MAE 2-D: the first half encodes the column (w), the second the row (h), patches row-major."""
    h, w, dim = 2, 3, 8
    enc = sincos_encoding(grid_positions((h, w)), (dim // 2, dim // 2), axes=(1, 0))
    assert enc.shape == (h * w, dim) and enc.dtype == torch.float32
    for i in range(h * w):
        row, col = divmod(i, w)
        ref = torch.tensor(_mae_1d(col, dim // 2) + _mae_1d(row, dim // 2))
        assert torch.allclose(enc[i], ref, atol=1e-6)


def test_sincos_3d_splits_dims_across_axes_like_prithvi() -> None:
    """Prithvi 3-D over (t, h, w): w gets 6/16 of the dims, h 6/16, t 4/16, in that order."""
    dim = 32
    dw, dh = dim // 16 * 6, dim // 16 * 6
    dt = dim - dw - dh
    pos = grid_positions((2, 3, 4))  # (t, h, w)
    enc = sincos_encoding(pos, (dw, dh, dt), axes=(2, 1, 0))
    assert enc.shape == (24, dim)
    assert torch.equal(enc[:, :dw], sincos_encoding(pos[:, 2], (dw,)))
    assert torch.equal(enc[:, dw : dw + dh], sincos_encoding(pos[:, 1], (dh,)))
    assert torch.equal(enc[:, dw + dh :], sincos_encoding(pos[:, 0], (dt,)))


def test_sincos_batched_and_float_positions() -> None:
    pos = torch.stack([grid_positions((2, 2)), grid_positions((2, 2)) + 3])  # (B, T, 2)
    enc = sincos_encoding(pos, (4, 4))
    assert enc.shape == (2, 4, 8)
    assert torch.equal(enc[1], sincos_encoding(pos[1], (4, 4)))
    half = sincos_encoding(pos.float() / 2, (4, 4))  # scaled positions (e.g. by ground sample distance)
    assert torch.allclose(half[0, 3], sincos_encoding(torch.tensor([[0.5, 0.5]]), (4, 4))[0])


def test_sincos_errors_say_what_was_expected() -> None:
    pos = grid_positions((2, 2))
    with pytest.raises(ValueError, match="even number of dims"):
        sincos_encoding(pos, (3, 4))
    with pytest.raises(ValueError, match="one length"):
        sincos_encoding(pos, (4, 4), axes=(0,))
    with pytest.raises(ValueError, match=r"positions must be \(T, 3\) or \(B, T, 3\) for a 3-D grid, got shape \(4, 2\)"):
        sincos_encoding(pos, (4, 4, 4))


@pytest.mark.parametrize("convention", ["rotate-half", "interleaved"])
def test_rotary_table_is_the_float64_formula(convention: str) -> None:
    inv = 500.0 ** (-torch.arange(0, 8, 2, dtype=torch.float64) / 8)
    angles = torch.arange(11, dtype=torch.float64).unsqueeze(1) * inv
    angles = torch.cat((angles, angles), -1) if convention == "rotate-half" else angles.repeat_interleave(2, -1)
    cos, sin = rotary_table(11, 8, base=500.0, convention=convention)
    assert torch.equal(cos, angles.cos().float()) and torch.equal(sin, angles.sin().float())
    with pytest.raises(ValueError, match="convention must be 'rotate-half' or 'interleaved'"):
        rotary_table(4, 8, convention="sideways")


def _axial_score(q: torch.Tensor, k: torch.Tensor, pq: list[int], pk: list[int], convention: str) -> torch.Tensor:
    """``q`` turned to grid point ``pq`` dotted with ``k`` turned to ``pk`` (head_dim 12 = 8 for h + 4 for w)."""
    cos, sin = axial_rotary(torch.tensor([pq, pk]), (8, 4), convention=convention)  # (2, 12)
    qr = apply_rotary(q, cos[0], sin[0], convention=convention, dims=(8, 4))
    kr = apply_rotary(k, cos[1], sin[1], convention=convention, dims=(8, 4))
    return (qr * kr).sum()


@pytest.mark.parametrize("convention", ["rotate-half", "interleaved"])
def test_axial_rotary_depends_on_the_offset_per_axis_only(convention: str) -> None:
    q, k = torch.randn(12), torch.randn(12)
    base = _axial_score(q, k, [3, 1], [1, 4], convention)
    assert torch.allclose(base, _axial_score(q, k, [7, 6], [5, 9], convention), atol=1e-5)  # same (dh, dw)
    assert not torch.allclose(base, _axial_score(q, k, [3, 1], [1, 5], convention), atol=1e-4)  # dw changed
    assert not torch.allclose(base, _axial_score(q, k, [3, 1], [2, 4], convention), atol=1e-4)  # dh changed


def test_axial_rotary_with_one_axis_is_the_1d_rotary() -> None:
    cos1, sin1 = rotary_table(6, 8)
    cos, sin = axial_rotary(torch.arange(6), (8,))
    assert torch.equal(cos, cos1) and torch.equal(sin, sin1)
    x = torch.randn(2, 6, 8)
    assert torch.equal(apply_rotary(x, cos, sin, dims=(8,)), apply_rotary(x, cos1, sin1))
    with pytest.raises(ValueError, match="add up to 6, head_dim is 8"):
        apply_rotary(x, cos, sin, dims=(4, 2))


def test_token_positions_and_span_name_the_encoder() -> None:
    assert token_positions("enc", torch.zeros(2, 5, 1), 1).shape == (2, 5)  # (B, T, 1) is a 1-D grid too
    with pytest.raises(ValueError, match=r"'enc': positions must be \(T,\) or \(B, T\) for a 1-D grid"):
        token_positions("enc", torch.zeros(2, 5, 3), 1)
    with pytest.raises(ValueError, match="'enc': positions cover 4 tokens, the input has 5"):
        token_positions("enc", torch.zeros(4, 2), 2, length=5)
    pos, needed = span("enc", grid_positions((2, 3)), 6, grid=2)
    assert pos is not None and needed == 3  # the largest coordinate, 2, needs 3 rows
    assert span("enc", None, 7) == (None, 7)
    with pytest.raises(ValueError, match="'enc': positions must be >= 0, got -2"):
        span("enc", torch.tensor([0, -2]), 2)
    with pytest.raises(ValueError, match=r"'enc': positions must lie in \[0, 4\), got up to 6; raise max_positions"):
        check_range("enc", 7, 4)
