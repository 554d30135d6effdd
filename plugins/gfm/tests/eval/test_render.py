"""Rendering helpers of the GFM evaluators: RGB band picking, percentile stretch, the reconstruction grid PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from registry_gfm.render import (
    FOOTER,
    HEADER,
    PAD,
    GridRow,
    apply_stretch,
    error_map,
    grid_size,
    rgb_indices,
    stretch,
    stretch_limits,
    write_grid_png,
)

# ---- band picking ----


def test_rgb_by_common_name() -> None:
    assert rgb_indices(["blue", "green", "red", "nir08"]) == (2, 1, 0)
    assert rgb_indices(["red", "green", "blue"]) == (0, 1, 2)
    assert rgb_indices(["nir08", "swir16", "Red", "Green", "BLUE"]) == (2, 3, 4)


def test_rgb_by_ids_and_aliases() -> None:
    # B04 is red on Sentinel-2, Landsat 8/9 and HLS but NIR on Landsat 7: the sensors vote
    assert rgb_indices(["B02", "B03", "B04", "B8A"]) == (2, 1, 0)
    assert rgb_indices(["SR_B2", "SR_B3", "SR_B4", "SR_B5"]) == (2, 1, 0)  # Landsat 8/9 vote, SR_B4 is red there
    # a sensor settles it: Landsat 7 band 1..3 are blue, green, red
    assert rgb_indices(["B1", "B2", "B3", "B4"], sensor="landsat-7") == (2, 1, 0)
    assert rgb_indices(["B1", "B2", "B3", "B4"], sensor="sentinel-2-l2a") == (3, 2, 1)
    # mixing common names with ids
    assert rgb_indices(["nir08", "B04", "green", "blue"]) == (1, 2, 3)


def test_rgb_fallbacks() -> None:
    assert rgb_indices(["a", "b", "c", "d"]) == (0, 1, 2)  # unknown names: the first three
    assert rgb_indices(["nir08", "swir16", "swir22"]) == (0, 1, 2)
    assert rgb_indices(["nir08", "swir16"]) == (0, 0, 0)  # fewer than three: one band repeated
    assert rgb_indices(["red"]) == (0, 0, 0)
    with pytest.raises(ValueError, match="no bands"):
        rgb_indices([])


# ---- stretch ----


def test_stretch_maps_percentiles_to_0_and_1() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.normal(size=(3, 50, 40)) * np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
    out = stretch(rgb, 2, 98)
    assert out.shape == rgb.shape and out.min() >= 0 and out.max() <= 1
    lo, hi = stretch_limits(rgb, 2, 98)
    np.testing.assert_allclose(lo, np.percentile(rgb.reshape(3, -1), 2, axis=1))
    np.testing.assert_allclose(hi, np.percentile(rgb.reshape(3, -1), 98, axis=1))
    for c in range(3):  # about 2 % of pixels at or below 0, about 2 % at or above 1, per channel
        assert 0.015 <= np.mean(out[c] <= 0) <= 0.03
        assert 0.015 <= np.mean(out[c] >= 1) <= 0.03
    # a linear map in between
    mid = (rgb[0] > lo[0]) & (rgb[0] < hi[0])
    np.testing.assert_allclose(out[0][mid], (rgb[0][mid] - lo[0]) / (hi[0] - lo[0]))
    # the full range 0..100 is min-max
    np.testing.assert_allclose(stretch(np.arange(12.0).reshape(3, 2, 2), 0, 100)[0], [[0, 1 / 3], [2 / 3, 1]])


def test_stretch_constant_channel_and_nan() -> None:
    rgb = np.stack([np.full((4, 4), 7.0), np.arange(16.0).reshape(4, 4), np.arange(16.0).reshape(4, 4)])
    rgb[1, 0, 0] = np.nan
    with np.errstate(all="raise"):  # no division by zero, no invalid operation
        out = stretch(rgb)
    assert np.isfinite(out).all()
    assert (out[:, 0, 0] == 0).all()  # a NaN in any channel: the pixel is black
    valid = np.ones((4, 4), bool)
    valid[0, 0] = False
    np.testing.assert_array_equal(out[0][valid], 0.5)  # constant channel: mid-grey
    # percentiles only over valid pixels: the NaN pixel and masked-out outliers do not move the limits
    rgb2 = np.stack([np.arange(16.0).reshape(4, 4)] * 3)
    rgb2[:, 3, 3] = 1e9
    keep = np.ones((4, 4), bool)
    keep[3, 3] = False
    lo, hi = stretch_limits(rgb2, 0, 100, valid=keep)
    np.testing.assert_allclose(lo, [0, 0, 0])
    np.testing.assert_allclose(hi, [14, 14, 14])
    assert (stretch(rgb2, 0, 100, valid=keep)[:, 3, 3] == 0).all()
    # everything invalid: black, no warnings
    with np.errstate(all="raise"):
        assert (stretch(np.full((3, 2, 2), np.nan)) == 0).all()


def test_stretch_argument_checks() -> None:
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        stretch(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="percentiles"):
        stretch(np.zeros((3, 4, 4)), 50, 10)


def test_apply_stretch_shares_limits() -> None:
    inp = np.stack([np.linspace(0, 1, 16).reshape(4, 4)] * 3)
    lo, hi = stretch_limits(inp, 0, 100)
    np.testing.assert_allclose(apply_stretch(inp * 0.5, lo, hi), inp * 0.5)  # not re-stretched to 0..1


def test_error_map() -> None:
    a = np.zeros((2, 2, 2))
    b = np.zeros((2, 2, 2))
    b[0, 0, 0], b[1, 0, 0] = 1.0, -3.0
    err = error_map(a, b, valid=np.array([[True, True], [True, False]]))
    assert err[0, 0] == 2.0 and err[0, 1] == 0.0 and np.isnan(err[1, 1])


# ---- grid PNG ----


def _rows(n: int, c: int = 4, h: int = 16, w: int = 16) -> list[GridRow]:
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(n):
        inp = rng.normal(size=(c, h, w)).astype(np.float32)
        mask = np.zeros((h, w), bool)
        mask[:8, :8] = True
        rows.append(GridRow(inp, inp + 0.1 * rng.normal(size=inp.shape), mask, np.ones((h, w), bool)))
    return rows


def test_grid_png_size_and_panels(tmp_path: Path) -> None:
    bands = ["blue", "green", "red", "nir08"]
    rows = _rows(3)
    path = write_grid_png(tmp_path / "out" / "grid.png", rows, bands, scale=2)
    assert path.exists()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        # four 32-px panels and five pads; the titles, three rows and four pads, the error colour bar's footer
        assert im.size == grid_size(3, 16, 16, 2) == (4 * 32 + 5 * PAD, HEADER + 3 * 32 + 4 * PAD + FOOTER)
        assert (HEADER, PAD, FOOTER) == (18, 2, 30)
        px = np.asarray(im)
    # the masked panel of row 0: its masked quarter is uniform grey, the rest equals the input panel
    y0, x_in, x_mask = HEADER + PAD, PAD, PAD + 32 + PAD
    masked = px[y0:y0 + 32, x_mask:x_mask + 32]
    assert (masked[:16, :16] == 128).all()
    np.testing.assert_array_equal(masked[16:, 16:], px[y0 + 16:y0 + 32, x_in + 16:x_in + 32])
    # the input panel shows red, green, blue = bands 2, 1, 0 stretched (nearest upsampling by 2)
    expect = np.round(stretch(rows[0].input[[2, 1, 0]]).transpose(1, 2, 0) * 255).astype(np.uint8)
    np.testing.assert_array_equal(px[y0:y0 + 32:2, x_in:x_in + 32:2], expect)
    # a per-band mask (band groups) greys a pixel when any shown band is hidden: the same picture here
    quarter = np.zeros((4, 16, 16), bool)
    quarter[:, :8, :8] = True  # the mask of _rows, per band
    per_band = [GridRow(r.input, r.reconstruction, quarter & (np.arange(4) != 3).reshape(4, 1, 1), r.valid)
                for r in rows]
    again = write_grid_png(tmp_path / "out" / "per_band.png", per_band, bands, scale=2)
    with Image.open(again) as im:
        np.testing.assert_array_equal(np.asarray(im), px)
    again.unlink()
    nir_only = [GridRow(r.input, r.reconstruction, quarter & (np.arange(4) == 3).reshape(4, 1, 1), r.valid)
                for r in rows]
    again = write_grid_png(tmp_path / "out" / "nir.png", nir_only, bands, scale=2)
    with Image.open(again) as im:  # only NIR hidden: the RGB masked panel is the input panel
        shown = np.asarray(im)
    np.testing.assert_array_equal(shown[y0:y0 + 32, x_mask:x_mask + 32], shown[y0:y0 + 32, x_in:x_in + 32])
    again.unlink()
    # no leftover temp files beside the PNG
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]


def test_grid_png_reconstruction_uses_the_input_stretch(tmp_path: Path) -> None:
    inp = np.stack([np.linspace(0, 1, 64).reshape(8, 8)] * 3)
    rec = inp * 0.5  # darker: if it were re-stretched on its own it would look identical to the input
    path = write_grid_png(tmp_path / "g.png", [GridRow(inp, rec)], ["red", "green", "blue"], scale=1, titles=None)
    with Image.open(path) as im:
        assert im.size == grid_size(1, 8, 8, 1, titles=False)
        px = np.asarray(im).astype(int)
    shown_in = px[2:10, 2:10]
    shown_rec = px[2:10, 2 + 2 * 10:2 + 2 * 10 + 8]
    assert shown_rec.mean() < 0.7 * shown_in.mean()
    lo, hi = stretch_limits(inp)
    expect = np.round(apply_stretch(rec, lo, hi).transpose(1, 2, 0) * 255)
    np.testing.assert_array_equal(shown_rec, expect)


def test_grid_png_default_scale_and_nan(tmp_path: Path) -> None:
    row = _rows(1, c=2, h=8, w=8)[0]
    inp = row.input.copy()
    inp[:, 0, 0] = np.nan
    path = write_grid_png(tmp_path / "g.png", [GridRow(inp, row.reconstruction)], ["nir08", "swir16"])
    with Image.open(path) as im:
        assert im.size == grid_size(1, 8, 8, 24)  # 8-pixel chips upsampled to 192 (PANEL)
        px = np.asarray(im)
    y0 = HEADER + PAD
    for j in range(4):  # the NaN pixel is black in input, masked and error panels; reconstructed in the third
        x = PAD + j * (192 + PAD)
        assert (px[y0:y0 + 24, x:x + 24] == 0).all() == (j != 2), j


def test_grid_png_errors(tmp_path: Path) -> None:
    rows = _rows(1)
    with pytest.raises(ValueError, match="no rows"):
        write_grid_png(tmp_path / "a.png", [], ["red"])
    with pytest.raises(ValueError, match="band names"):
        write_grid_png(tmp_path / "a.png", rows, ["red", "green"])
    with pytest.raises(ValueError, match="titles"):
        write_grid_png(tmp_path / "a.png", rows, ["a", "b", "c", "d"], titles=("x",))
    bad = GridRow(rows[0].input, rows[0].reconstruction[:, :8])
    with pytest.raises(ValueError, match="row 0"):
        write_grid_png(tmp_path / "a.png", [bad], ["a", "b", "c", "d"])
    assert not list(tmp_path.iterdir())
