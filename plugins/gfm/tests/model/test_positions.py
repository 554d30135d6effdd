"""Imagery positions: MAE's 2-D and Prithvi's 3-D sin-cos tables, learned-2d interpolation, metadata encodings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from registry_core import get_registry
from registry_gfm.positions.placement import Placement
from registry_gfm.positions.sincos import SinCos2D, SinCos3D, sincos_2d_table, sincos_3d_table, time_features
from registry_gfm.positions.specs import MetadataOptions, SinCos3DConfig
from registry_gfm.tokenizers.patch_layout import token_grid_positions


def reference_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    """The definition MAE and Prithvi use: frequencies 1 / 10000^(i / (dim/2)), sin block then cos block."""
    freq = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    angle = np.outer(pos.reshape(-1), freq)
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)


def reference_2d(gh: int, gw: int, dim: int) -> np.ndarray:
    """MAE's table: the grid is (w, h) from meshgrid(w, h); the first half of channels encodes w."""
    rows, cols = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    return np.concatenate([reference_1d(dim // 2, cols), reference_1d(dim // 2, rows)], axis=1)


def reference_3d(gt: int, gh: int, gw: int, dim: int) -> np.ndarray:
    """Prithvi's table: w 6/16, h 6/16, t 4/16 of the channels, concatenated in that order."""
    t, h, w = np.meshgrid(np.arange(gt), np.arange(gh), np.arange(gw), indexing="ij")
    d = dim // 16
    return np.concatenate([reference_1d(6 * d, w), reference_1d(6 * d, h), reference_1d(4 * d, t)], axis=1)


@pytest.mark.parametrize(("gh", "gw", "dim"), [(14, 14, 768), (4, 6, 64), (3, 1, 8)])
def test_sincos_2d_equals_the_mae_table(gh: int, gw: int, dim: int) -> None:
    ours = sincos_2d_table(gh, gw, dim, cls_token=True)
    assert ours.shape == (1 + gh * gw, dim) and (ours[0] == 0).all()
    np.testing.assert_allclose(ours[1:].numpy(), reference_2d(gh, gw, dim), atol=1e-6)


@pytest.mark.parametrize(("gt", "gh", "gw", "dim"), [(3, 14, 14, 768), (1, 4, 4, 64), (2, 3, 5, 32)])
def test_sincos_3d_equals_the_prithvi_split(gt: int, gh: int, gw: int, dim: int) -> None:
    ours = sincos_3d_table(gt, gh, gw, dim)
    np.testing.assert_allclose(ours.numpy(), reference_3d(gt, gh, gw, dim), atol=1e-6)


def test_dimension_checks_are_clear() -> None:
    with pytest.raises(ValueError, match="divisible by 16"):
        SinCos3DConfig(embed_dim=40)
    with pytest.raises(ValueError, match="divisible by 16"):
        SinCos3D(40)
    with pytest.raises(ValueError, match="divisible by 4"):
        SinCos2D(6)


def test_encoders_recompute_for_any_grid_and_need_positions() -> None:
    enc = SinCos2D(32)
    pos = token_grid_positions((1, 3, 5))
    out = enc(torch.zeros(2, 15, 32), pos)
    torch.testing.assert_close(out[0], sincos_2d_table(3, 5, 32))
    enc3 = SinCos3D(32)
    pos3 = token_grid_positions((2, 2, 2))
    torch.testing.assert_close(enc3(torch.zeros(1, 8, 32), Placement(pos3))[0], sincos_3d_table(2, 2, 2, 32))
    with pytest.raises(ValueError, match="needs the patch positions"):
        enc(torch.zeros(1, 4, 32))


def test_learned_2d_is_a_table_interpolated_bicubically_to_other_grids() -> None:
    enc = get_registry().build("positional_encoder", "learned-2d", embed_dim=8, grid_size=[4, 4])
    same = enc(torch.zeros(1, 16, 8), token_grid_positions((1, 4, 4)))
    torch.testing.assert_close(same[0], enc.table.detach().reshape(16, 8))
    bigger = enc(torch.zeros(1, 64, 8), token_grid_positions((1, 8, 8)))
    expected = torch.nn.functional.interpolate(enc.table.detach().permute(2, 0, 1)[None], size=(8, 8), mode="bicubic")
    torch.testing.assert_close(bigger[0], expected[0].permute(1, 2, 0).reshape(64, 8))
    bigger.sum().backward()  # the table learns through the interpolation
    assert enc.table.grad is not None


def test_gsd_scaling_multiplies_patch_coordinates_by_gsd_over_reference() -> None:
    enc = SinCos2D(32, MetadataOptions(gsd_reference=10.0))
    pos = token_grid_positions((1, 2, 2))
    x = torch.zeros(2, 4, 32)
    out = enc(x, Placement(pos, gsd=torch.tensor([10.0, 30.0])))
    plain = SinCos2D(32)
    torch.testing.assert_close(out[0], plain(x[:1], pos)[0])  # GSD equal to the reference: unchanged
    torch.testing.assert_close(out[1], plain.encode(torch.cat([pos[:, :1], pos[:, 1:] * 3], 1).double()).float())
    with pytest.raises(ValueError, match="no 'gsd'"):
        enc(x, pos)


def test_time_and_location_encodings_start_at_a_scale_of_a_tenth() -> None:
    assert time_features(torch.tensor([951868800])).tolist() == [[2000.0, 61.0]]  # 2000-03-01: day 61 (leap year)
    enc = SinCos3D(32, MetadataOptions(time_encoding=True, location_encoding=True))
    assert enc.time_scale.item() == pytest.approx(0.1) and enc.location_scale.item() == pytest.approx(0.1)
    pos = token_grid_positions((2, 1, 1))
    where = Placement(pos, time=torch.tensor([[951868800, 954547200]]), lonlat=torch.tensor([[-78.6, 35.8]]))
    out = enc(torch.zeros(1, 2, 32), where) - SinCos3D(32)(torch.zeros(1, 2, 32), pos)
    year = reference_1d(16, np.array([2000.0]))[0]
    days = reference_1d(16, np.array([61.0, 92.0]))
    lat, lon = reference_1d(16, np.array([35.8]))[0], reference_1d(16, np.array([-78.6]))[0]
    expected = 0.1 * np.stack([np.concatenate([year, days[i]]) + np.concatenate([lat, lon]) for i in range(2)])
    np.testing.assert_allclose(out[0].detach().numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError, match="time_encoding needs"):
        enc(torch.zeros(1, 2, 32), pos)
