"""The global tile grid of ``predict``: coverage of every pixel, the blending windows, reflect indexing."""

from __future__ import annotations

import numpy as np
import pytest

from registry_gfm.predict._grid import TileGrid, blend_ramp, blend_window, reflect_index, tiles_along


@pytest.mark.parametrize(("size", "tile", "stride"), [(1, 64, 48), (64, 64, 48), (65, 64, 48), (1001, 64, 48),
                                                      (777, 32, 32), (10, 8, 1)])
def test_tiles_cover_every_pixel_with_the_fewest_tiles(size: int, tile: int, stride: int) -> None:
    n = tiles_along(size, tile, stride)
    assert (n - 1) * stride + tile >= size  # the last tile reaches the last pixel
    assert n == 1 or (n - 2) * stride + tile < size  # one tile fewer would not


def test_tiles_touching_a_block_are_exactly_those_whose_output_overlaps_it() -> None:
    grid = TileGrid(height=1001, width=777, tile=64, overlap=16, factor=4)
    t, s = grid.out_tile, grid.out_stride
    assert grid.out_shape == (251, 195)
    for lo, hi in [(0, 1), (0, 64), (5, 37), (100, 251), (250, 251)]:
        touching = list(grid.tiles_touching(lo, hi, axis=0))
        brute = [k for k in range(grid.rows) if k * s < hi and k * s + t > lo]
        assert touching == brute


@pytest.mark.parametrize("blend", ["cosine", "linear"])
def test_ramps_are_positive_and_sum_to_one_across_an_overlap(blend: str) -> None:
    tile, overlap = 64, 16
    w = blend_ramp(tile, overlap, blend)  # type: ignore[arg-type]
    assert (w > 0).all() and w.max() == 1.0 and np.allclose(w, w[::-1])
    stride = tile - overlap
    total = np.zeros(stride * 3 + tile)
    for k in range(4):
        total[k * stride : k * stride + tile] += w
    assert np.allclose(total[stride : 3 * stride + overlap], 1.0)  # the interior: a partition of unity
    assert w[0] < 0.05 and w[overlap] == 1.0


def test_blend_none_is_plain_averaging_and_a_window_is_the_outer_product() -> None:
    assert (blend_window(16, 4, "none") == 1).all()
    w = blend_window(16, 4, "cosine")
    assert w.shape == (16, 16) and np.array_equal(w, np.outer(w[8], w[8]))
    assert (blend_ramp(8, 6, "cosine") > 0).all()  # overlaps wider than half a tile still weigh every pixel
    with pytest.raises(ValueError, match="blend 'gauss' is unknown"):
        blend_ramp(16, 4, "gauss")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overlap 16 must be"):
        blend_ramp(16, 16, "cosine")


def test_reflect_index_matches_numpy_reflect_padding_even_past_a_small_scene() -> None:
    for size in (1, 2, 5, 9):
        data = np.arange(size)
        pad = 23
        expected = np.pad(data, (0, pad), mode="reflect") if size > 1 else np.zeros(size + pad, int)
        assert np.array_equal(reflect_index(np.arange(size + pad), size), expected)
