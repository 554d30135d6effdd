"""The ``patch`` tokenizer: exact patchify/unpatchify, MAE's (p, q, c) order, valid fractions, padding, groups."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from registry_core import get_registry
from registry_gfm.tokenizers.patch_layout import patch_grid, patchify, token_grid_positions, unpatchify
from registry_gfm.tokenizers.patch_tokenizer import PatchEmbed, PatchTokenizer, group_indices
from registry_gfm.tokenizers.specs import PatchConfig

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]


@pytest.mark.parametrize(("t", "h", "w", "p", "tub"), [(1, 32, 32, 8, 1), (4, 24, 40, 8, 2), (3, 16, 48, 16, 1)])
def test_patchify_and_unpatchify_are_exact_inverses(t: int, h: int, w: int, p: int, tub: int) -> None:
    chips = torch.randn(2, 5, t, h, w)
    patches = patchify(chips, p, tub)
    grid = patch_grid((t, h, w), p, tub)
    assert patches.shape == (2, grid[0] * grid[1] * grid[2], tub * p * p * 5)
    assert torch.equal(unpatchify(patches, p, tub, 5, grid), chips)


def test_patch_vectors_are_ordered_p_q_c_as_mae() -> None:
    chips = torch.randn(1, 3, 1, 8, 12)  # 2 x 3 patches of 4
    patches = patchify(chips, 4)
    # token 4 is row 1, column 1: pixels [4:8, 4:8]; its vector runs over rows p, then columns q, then bands c
    expected = chips[0, :, 0, 4:8, 4:8].permute(1, 2, 0).reshape(-1)
    assert torch.equal(patches[0, 4], expected)
    assert patches[0, 4, 1] == chips[0, 1, 0, 4, 4] and patches[0, 4, 3] == chips[0, 0, 0, 4, 5]
    assert token_grid_positions((1, 2, 3))[4].tolist() == [0, 1, 1]


def test_sides_that_do_not_divide_are_an_error_naming_the_sizes() -> None:
    with pytest.raises(ValueError, match=r"width=30 is not a multiple of 8.*pad = true"):
        patchify(torch.zeros(1, 2, 1, 32, 30), 8)
    with pytest.raises(ValueError, match="frames=3 is not a multiple of 2"):
        patch_grid((3, 16, 16), 8, 2)
    with pytest.raises(ValueError, match="chip_size 30 is not a multiple of patch_size 8"):
        PatchConfig(chip_size=30, patch_size=8)


def test_linear_projection_on_patches_equals_the_conv3d_on_chips() -> None:
    torch.manual_seed(0)
    embed = PatchEmbed(4, 32, 8, tubelet=2)
    chips = torch.randn(3, 4, 4, 16, 24)
    by_conv = F.conv3d(chips, embed.proj.weight, embed.proj.bias, stride=(2, 8, 8)).flatten(2).transpose(1, 2)
    torch.testing.assert_close(embed(patchify(chips, 8, 2)), by_conv, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(embed(chips), by_conv, rtol=1e-5, atol=1e-5)
    assert embed.proj.weight.shape == (32, 4, 2, 8, 8)


def sample(t: int = 1, size: int = 16, c: int = 6) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {"pixels": torch.randn(t, c, size, size), "valid": torch.ones(t, size, size, dtype=torch.bool),
            "time": torch.arange(t) * 86400, "center_lonlat": torch.tensor([-78.6, 35.8], dtype=torch.float64)}


def test_encode_fills_nan_and_invalid_pixels_and_reports_valid_fractions() -> None:
    tok = PatchTokenizer(PatchConfig(patch_size=8, bands=BANDS))
    s = sample()
    s["pixels"][0, 2, 0, 0] = float("nan")  # one NaN in one band: the whole pixel is unusable
    s["valid"][0, 8:, 8:] = False  # the last patch is cloud
    out = tok.encode(s)
    assert out["patches"].shape == (4, 8 * 8 * 6) and torch.isfinite(out["patches"]).all()
    assert out["valid_fraction"].tolist() == pytest.approx([63 / 64, 1.0, 1.0, 0.0])
    assert not out["pixel_valid"][0, 0] and out["pixel_valid"][0, 1]
    assert (out["patches"][3] == 0).all() and (out["patches"][0, :6] == 0).all()
    assert out["positions"].tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]]
    assert torch.equal(out["center_lonlat"], s["center_lonlat"])


def test_padding_reflects_and_marks_the_padded_pixels_invalid() -> None:
    tok = PatchTokenizer(PatchConfig(patch_size=8, bands=BANDS, pad=True))
    out = tok.encode(sample(size=12))
    assert out["patches"].shape == (4, 384)
    assert out["valid_fraction"].tolist() == pytest.approx([1.0, 32 / 64, 32 / 64, 16 / 64])
    with pytest.raises(ValueError, match="height=12 is not a multiple of 8"):
        PatchTokenizer(PatchConfig(patch_size=8, bands=BANDS)).encode(sample(size=12))


def test_tubelets_of_a_time_series() -> None:
    tok = PatchTokenizer(PatchConfig(patch_size=8, tubelet=2, frames=4, bands=BANDS, chip_size=16))
    out = tok.encode(sample(t=4))
    assert out["patches"].shape == (2 * 4, 2 * 8 * 8 * 6) and tok.tokens_per_sample() == 8
    assert out["positions"][:, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert tok.config.grid == 3 and PatchConfig(frames=2, tubelet=2).grid == 2


def test_band_groups_give_one_token_per_group_with_its_own_projection() -> None:
    groups = [["blue", "green", "red"], ["nir08"], ["B6", "swir22"]]  # an alias counts as its band
    with pytest.raises(ValueError, match="not among the bands"):
        group_indices(BANDS, groups)
    groups[2] = ["swir16", "swir22"]
    tok = PatchTokenizer(PatchConfig(patch_size=8, bands=BANDS, band_groups=groups, chip_size=16))
    assert tok.tokens_per_sample() == 12
    out = tok.encode(sample())
    assert out["positions"].shape == (12, 3) and out["valid_fraction"].shape == (12,)
    embed = tok.embedding(32)
    x = embed(out["patches"][None])
    assert x.shape == (1, 12, 32)
    chips = sample()["pixels"].permute(1, 0, 2, 3)[None]
    torch.testing.assert_close(embed(chips), x, rtol=1e-5, atol=1e-5)
    # group 1 (nir08 alone) sees only band 3
    only_nir = embed.groups[1](chips[:, [3]]).flatten(2).transpose(1, 2) + embed.group_embed[1]
    torch.testing.assert_close(x[:, 4:8], only_nir, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="every band once"):
        group_indices(BANDS, [["blue", "green"], ["red"]])


def test_built_through_the_registry_and_the_bands_check() -> None:
    tok = get_registry().build("tokenizer", "patch", patch_size=4, bands=BANDS[:3])
    with pytest.raises(ValueError, match=r"expects 3 bands \['blue', 'green', 'red'\], the chip has 6"):
        tok.encode(sample())
    with pytest.raises(ValueError, match="does not know its bands"):
        PatchTokenizer(PatchConfig()).embedding(8)
