"""The ``contrastive`` objective: SimCLR's NT-Xent between two dates or two augmentations of one place."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch.nn import functional as F

from registry_core import ConfigError, compose
from registry_gfm.objectives._views import Augmentation, apply_augmentation, draw_augmentation, pick_frames
from registry_gfm.objectives.contrastive import info_nce
from registry_gfm.objectives.specs import ContrastiveConfig
from registry_gfm.tokenizers.patch_layout import patchify, token_grid_positions, unpatchify

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]
DAY = 86400


def model_config(frames: int = 1, backbone: str = "vit", **objective: Any) -> dict[str, Any]:
    return {
        "data": {"use": "zarr-chips", "store": "unused.zarr", "chip_size": 16, "bands": BANDS, "frames": frames},
        "tokenizer": {"use": "patch", "patch_size": 4, "bands": BANDS},
        "positional": {"use": "sincos-2d" if frames == 1 else "sincos-3d"},
        "backbone": {"use": backbone, "embed_dim": 32, "depth": 2, "heads": 4},
        "objective": {"use": "contrastive", **objective},
    }


def built(frames: int = 1, seed: int = 0, **objective: Any) -> Any:
    torch.manual_seed(seed)
    pipe = compose(model_config(frames, **objective)).build(prepare=False)
    pipe.objective.generator = torch.Generator().manual_seed(seed)
    return pipe


def batch(b: int = 4, frames: int = 1, size: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """Collated ``patch`` tokens of ``b`` random chips (as the tokenizer and the default collate give them)."""
    g = torch.Generator().manual_seed(seed)
    chips = torch.randn(b, 6, frames, size, size, generator=g)
    n = frames * (size // 4) ** 2
    return {"patches": patchify(chips, 4), "positions": token_grid_positions((frames, size // 4, size // 4)),
            "pixel_valid": torch.ones(b, n, 16, dtype=torch.bool), "valid_fraction": torch.ones(b, n),
            "time": (torch.arange(frames) * 30 * DAY + 946684800).repeat(b, 1),
            "center_lonlat": torch.zeros(b, 2, dtype=torch.float64), "gsd": torch.full((b,), 30.0, dtype=torch.float64)}


# -- the loss ----------------------------------------------------------------------------------------


def test_info_nce_equals_a_hand_written_nt_xent() -> None:
    z1 = F.normalize(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.2], [0.3, 0.3, 1.0]]), dim=1)
    z2 = F.normalize(torch.tensor([[0.9, 0.1, 0.0], [0.1, 1.0, -0.3], [1.0, 0.0, 0.5]]), dim=1)
    tau = 0.5
    rows = [*z1.tolist(), *z2.tolist()]
    m = len(z1)
    total, hits = 0.0, 0
    for i, zi in enumerate(rows):
        partner = (i + m) % (2 * m)
        sims = {j: sum(a * b for a, b in zip(zi, zj)) / tau for j, zj in enumerate(rows) if j != i}
        total += -sims[partner] + math.log(sum(math.exp(s) for s in sims.values()))
        hits += max(sims, key=lambda j: sims[j]) == partner
    loss, accuracy = info_nce(z1, z2, tau)
    assert float(loss) == pytest.approx(total / (2 * m), rel=1e-5)
    assert float(accuracy) == pytest.approx(hits / (2 * m))
    assert 0 < hits < 2 * m  # the example has both right and wrong picks (sample 2's partner is not its nearest)


def test_info_nce_of_random_features_is_near_log_2b_minus_1() -> None:
    g = torch.Generator().manual_seed(0)
    b = 32
    z1, z2 = (F.normalize(torch.randn(b, 4096, generator=g), dim=1) for _ in range(2))
    loss, _ = info_nce(z1, z2, 0.1)
    assert float(loss) == pytest.approx(math.log(2 * b - 1), abs=0.1)


def test_the_objective_loss_is_the_info_nce_of_its_pooled_projected_views() -> None:
    pipe = built()
    obj, b = pipe.objective, batch()
    obj.generator = torch.Generator().manual_seed(3)
    loss, metrics = pipe.model(b)
    v1, v2, kind = obj.views(b, torch.Generator().manual_seed(3))
    h1 = pipe.parts.backbone(pipe.parts.embed(patchify(v1.chips, 4)), pipe.parts.positional,
                             token_grid_positions((1, v1.chips.shape[-2] // 4, v1.chips.shape[-1] // 4)))[:, 0]
    h2 = obj.encode(pipe.parts, v2, b)
    z = obj.project(torch.cat([h1, h2]))
    expected, accuracy = info_nce(z[:4], z[4:], 0.1)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    assert kind == "augmentations" and metrics["pairs"] == 4 and metrics["accuracy"] == pytest.approx(float(accuracy))
    assert set(metrics) == {"loss", "accuracy", "dates", "pairs"} and metrics["dates"] == 0.0


def test_an_untrained_model_starts_near_chance() -> None:
    pipe = built(temperature=1.0, head="gelu")
    loss, _ = pipe.model(batch(b=16))
    assert float(loss.detach()) == pytest.approx(math.log(2 * 16 - 1), abs=0.25)


def test_training_a_tiny_model_lowers_the_loss_on_a_fixed_batch() -> None:
    pipe = built(projection_dim=32)
    b = batch(b=8)

    def fixed_views_loss() -> float:
        pipe.objective.generator = torch.Generator().manual_seed(123)
        return float(pipe.model(b)[0].detach())

    first = fixed_views_loss()
    pipe.objective.generator = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(pipe.model.parameters(), lr=2e-3)
    for _ in range(40):
        opt.zero_grad()
        pipe.model(b)[0].backward()
        opt.step()
    assert fixed_views_loss() < 0.75 * first  # 3.77 -> 2.44 here


def test_eval_views_are_fixed_and_training_views_follow_the_generator() -> None:
    pipe = built()
    b = batch()
    first = float(pipe.model(b)[0].detach())
    assert float(pipe.model(b)[0].detach()) != first  # the generator moved on: new views
    pipe.model.eval()
    with torch.no_grad():
        assert float(pipe.model(b)[0]) == float(pipe.model(b)[0])


# -- the views ---------------------------------------------------------------------------------------


def test_two_dates_of_one_place_when_chips_have_frames() -> None:
    pipe = built(frames=3)
    b = batch(b=6, frames=3)
    v1, v2, kind = pipe.objective.views(b, torch.Generator().manual_seed(0))
    assert kind == "dates"
    assert v1.frames is not None and v2.frames is not None
    assert (v1.frames != v2.frames).all()
    assert v1.time is not None and v2.time is not None and (v1.time != v2.time).all()
    chips = unpatchify(b["patches"], 4, 1, 6, (3, 4, 4))
    for i in range(6):
        assert torch.equal(v1.chips[i, :, 0], chips[i, :, int(v1.frames[i])])
        assert torch.equal(v2.chips[i, :, 0], chips[i, :, int(v2.frames[i])])
        assert int(v1.time[i, 0]) == int(b["time"][i, int(v1.frames[i])])
    assert v1.chips.shape == (6, 6, 1, 16, 16)  # each view is one date, the whole chip
    loss, metrics = pipe.model(b)
    loss.backward()
    assert metrics["dates"] == 1.0 and pipe.objective.last_views == "dates"
    # every ordered pair of the three dates turns up across draws
    pairs = {tuple(p) for p in pick_frames(torch.ones(200, 3), 0.0, torch.Generator().manual_seed(1)).tolist()}
    assert pairs == {(i, j) for i in range(3) for j in range(3) if i != j}


def test_dates_are_drawn_among_frames_with_usable_pixels() -> None:
    valid = torch.tensor([[1.0, 0.0, 0.5, 0.0], [0.0, 0.0, 0.2, 0.0]])
    picks = pick_frames(valid.repeat(50, 1), 0.0, torch.Generator().manual_seed(0))
    assert set(map(tuple, picks[0::2].sort(dim=1).values.tolist())) == {(0, 2)}
    assert (picks[:, 0] != picks[:, 1]).all()  # a sample with one usable date still gets two different ones


def test_augmentations_when_chips_have_one_frame_and_on_request() -> None:
    pipe = built()
    v1, v2, kind = pipe.objective.views(batch(), torch.Generator().manual_seed(0))
    assert kind == "augmentations" and v1.frames is None
    assert v1.chips.shape == v2.chips.shape  # one crop side per batch, both views stack into one pass
    forced = built(frames=2, views="augmentations")
    _, _, kind = forced.objective.views(batch(frames=2), torch.Generator().manual_seed(0))
    assert kind == "augmentations"
    single = built(views="dates")
    with pytest.raises(ValueError, match=">= 2 time slices"):
        single.model(batch())


def test_rotating_by_90_degrees_and_back_gives_the_input() -> None:
    x = torch.randn(2, 6, 1, 16, 16)
    full = torch.zeros(2, 2, dtype=torch.long)
    no = torch.zeros(2, dtype=torch.bool)
    quarter = apply_augmentation(x, Augmentation(4, full, no, torch.tensor([1, 3])), patch=4)
    assert torch.equal(quarter[0, :, :, 0, :], x[0, :, :, :, -1])  # the last column became the first row
    back = apply_augmentation(quarter, Augmentation(4, full, no, torch.tensor([3, 1])), patch=4)
    assert torch.equal(back, x)
    identity = apply_augmentation(x, Augmentation(4, full, no, torch.zeros(2, dtype=torch.long)), patch=4)
    assert torch.equal(identity, x) and torch.equal(patchify(identity, 4), patchify(x, 4))


def test_flips_mirror_the_chip_and_undo_themselves() -> None:
    x = torch.randn(2, 6, 1, 16, 16)
    full = torch.zeros(2, 2, dtype=torch.long)
    aug = Augmentation(4, full, torch.tensor([True, False]), torch.zeros(2, dtype=torch.long))
    once = apply_augmentation(x, aug, patch=4)
    assert torch.equal(once[0], x[0].flip(-1)) and torch.equal(once[1], x[1])
    assert torch.equal(apply_augmentation(once, aug, patch=4), x)


def test_crops_keep_whole_patches() -> None:
    x = torch.randn(3, 6, 1, 16, 16)
    tokens = patchify(x, 4)  # (3, 16, 96)
    aug = draw_augmentation(3, (4, 4), 2, flips=False, rotations=False, generator=torch.Generator().manual_seed(0))
    crop = apply_augmentation(x, aug, patch=4)
    assert crop.shape == (3, 6, 1, 8, 8)
    for i in range(3):
        top, left = (int(v) for v in aug.top_left[i])
        assert torch.equal(crop[i], x[i, ..., top * 4:top * 4 + 8, left * 4:left * 4 + 8])
        grid_rows = [(top + r) * 4 + left + c for r in range(2) for c in range(2)]
        assert torch.equal(patchify(crop, 4)[i], tokens[i, grid_rows])  # each view token is one original patch
    pipe = built(crop_min=0.5)
    sides = {pipe.objective.views(batch(), torch.Generator().manual_seed(s))[0].chips.shape[-1] for s in range(30)}
    assert sides == {8, 12, 16}  # 2 to 4 whole patches of 4 pixels


# -- invalid pixels ----------------------------------------------------------------------------------


def test_a_sample_with_an_all_invalid_view_contributes_nothing() -> None:
    pipe = built(frames=2)
    b = batch(b=4, frames=2)
    b["pixel_valid"][0, 16:] = False  # sample 0: its second date is all cloud
    loss, metrics = pipe.model(b)
    assert metrics["pairs"] == 3
    rest = {k: (v if k == "positions" else v[1:]) for k, v in b.items()}
    pipe.objective.generator = torch.Generator().manual_seed(5)  # with two dates the loss is the same either order
    torch.testing.assert_close(pipe.model(rest)[0], loss, rtol=1e-5, atol=1e-6)
    # whatever the invalid view's pixels hold, the loss does not change
    b["patches"][0] = 1e3
    torch.testing.assert_close(pipe.model(b)[0], loss, rtol=1e-5, atol=1e-6)


def test_nothing_usable_gives_a_zero_loss_that_backpropagates() -> None:
    pipe = built()
    b = batch()
    b["pixel_valid"][:] = False
    loss, metrics = pipe.model(b)
    assert float(loss.detach()) == 0.0 and metrics["pairs"] == 0
    loss.backward()
    assert pipe.objective.projector[0].weight.grad is not None


# -- config, composition, build ----------------------------------------------------------------------


def test_temperature_must_be_positive() -> None:
    assert ContrastiveConfig().temperature == 0.1
    for bad in (0.0, -0.5):
        with pytest.raises(ValueError, match="temperature must be > 0"):
            ContrastiveConfig(temperature=bad)
        with pytest.raises(ConfigError, match="temperature"):
            compose(model_config(temperature=bad))


def test_contrastive_over_a_causal_backbone_is_rejected() -> None:
    with pytest.raises(ConfigError) as err:
        compose(model_config(backbone="gpt"))
    text = str(err.value)
    assert "contrastive" in text and "gpt" in text and "causal" in text


def test_builds_through_compose_with_zarr_chips_and_pools_by_config() -> None:
    pipe = built()
    assert pipe.objective.pool == "cls"
    names = [k for k in pipe.model.state_dict() if k.startswith("objective.")]
    assert "objective.projector.0.weight" in names and "objective.projector.1.running_mean" in names
    assert tuple(pipe.objective.projector[-1].weight.shape) == (128, 32)
    cfg = model_config(pool="auto", head="gelu", hidden_dim=16, projection_dim=8)
    cfg["backbone"]["cls_token"] = False
    plain = compose(cfg).build(prepare=False)
    assert plain.objective.pool == "mean"
    assert [type(m).__name__ for m in plain.objective.projector] == ["Linear", "GELU", "Linear"]
    loss, _ = plain.model(batch())
    loss.backward()
    cfg["objective"]["pool"] = "cls"
    with pytest.raises(ValueError, match="cls token"):
        compose(cfg).build(prepare=False)


def test_band_groups_and_tubelets() -> None:
    cfg = model_config()
    cfg["tokenizer"]["band_groups"] = [["blue", "green", "red"], ["nir08"], ["swir16", "swir22"]]
    pipe = compose(cfg).build(prepare=False)
    b = batch()
    b["positions"] = b["positions"].repeat(3, 1)
    b["valid_fraction"] = b["valid_fraction"].repeat(1, 3)
    loss, metrics = pipe.model(b)
    loss.backward()
    assert metrics["pairs"] == 4
    cfg = model_config(frames=4)
    cfg["tokenizer"]["tubelet"] = 2
    tub = compose(cfg).build(prepare=False)
    chips = torch.randn(3, 6, 4, 16, 16)
    tb = {"patches": patchify(chips, 4, 2), "positions": token_grid_positions((2, 4, 4)),
          "time": torch.arange(4).repeat(3, 1) * DAY}
    v1, v2, kind = tub.objective.views(tb, torch.Generator().manual_seed(0))
    assert kind == "dates" and v1.chips.shape == (3, 6, 2, 16, 16)
    assert v1.frames is not None and v2.frames is not None and (v1.frames != v2.frames).all()
    assert v1.time is not None and torch.equal(v1.time[:, 1] - v1.time[:, 0], torch.full((3,), DAY))
    tub.model(tb)[0].backward()
