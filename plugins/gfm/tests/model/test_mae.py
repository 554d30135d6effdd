"""The ``mae`` objective and the ``vit`` backbone: masking, cloud-aware loss, token dropping, band groups."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from registry_core import compose
from registry_gfm.encoder import ImageEncoder
from registry_gfm.objectives.mae import random_masking
from registry_gfm.tokenizers.patch_layout import patchify, token_grid_positions

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]


def model_config(store: str = "unused.zarr", **objective: Any) -> dict[str, Any]:
    return {
        "data": {"use": "zarr-chips", "store": store, "chip_size": 16, "bands": BANDS},
        "tokenizer": {"use": "patch", "patch_size": 4, "bands": BANDS},
        "positional": {"use": "sincos-2d"},
        "backbone": {"use": "vit", "embed_dim": 32, "depth": 2, "heads": 4},
        "objective": {"use": "mae", "decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2, **objective},
    }


def built(**objective: Any) -> Any:
    return compose(model_config(**objective)).build(prepare=False)


def batch(b: int = 2, size: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    chips = torch.randn(b, 6, 1, size, size, generator=g)
    n = (size // 4) ** 2
    return {"patches": patchify(chips, 4), "positions": token_grid_positions((1, size // 4, size // 4)),
            "pixel_valid": torch.ones(b, n, 16, dtype=torch.bool), "valid_fraction": torch.ones(b, n)}


def test_random_masking_keeps_the_lowest_noise_tokens() -> None:
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
    keep, mask, restore = random_masking(noise, 0.5)
    assert keep.tolist() == [[1, 3], [0, 2]]
    assert mask.tolist() == [[1, 0, 1, 0], [0, 1, 0, 1]]
    assert torch.equal(torch.argsort(torch.argsort(noise, 1), 1), restore)


def test_only_kept_tokens_enter_the_encoder_blocks() -> None:
    pipe = built()
    seen: list[tuple[int, ...]] = []
    pipe.parts.backbone.blocks[0].register_forward_hook(lambda m, a, out: seen.append(tuple(out.shape)))
    loss, metrics = pipe.model(batch())
    assert seen == [(2, 1 + 4, 32)]  # cls + 25% of the 16 tokens
    assert metrics["masked_tokens"] == 24 and loss.requires_grad


def test_injected_noise_decides_the_mask_and_eval_masks_are_fixed() -> None:
    pipe = built()
    b = batch()
    b["noise"] = torch.rand(2, 16)
    pred_a, mask_a = pipe.objective.predict(pipe.parts, b)
    pred_b, mask_b = pipe.objective.predict(pipe.parts, b)
    assert torch.equal(mask_a, mask_b) and torch.equal(pred_a[0], pred_b[0])
    assert torch.equal(mask_a, random_masking(b["noise"], 0.75)[1])
    pipe.model.eval()
    del b["noise"]
    with torch.no_grad():
        first, again = pipe.model(b)[0], pipe.model(b)[0]
    assert float(first) == float(again)


def test_invalid_pixels_of_masked_patches_never_count() -> None:
    """Cloud under a masked patch: whatever its pixels hold, the loss is the same (they are neither seen nor targets)."""
    pipe = built()
    b = batch()
    b["noise"] = torch.rand(2, 16)
    b["pixel_valid"][:, :, :8] = False  # the top half of every patch is cloud
    masked = random_masking(b["noise"], 0.75)[1].bool()
    garbage = dict(b, patches=b["patches"].clone())
    block = garbage["patches"][:, :, : 8 * 6]  # the first 8 pixels x 6 bands of each patch: the cloudy ones
    block[masked] = 1e3
    garbage["patches"][:, :, : 8 * 6] = block
    torch.testing.assert_close(pipe.model(garbage)[0], pipe.model(b)[0])


def test_loss_ignores_invalid_target_pixels_exactly() -> None:
    pipe = built()
    b = batch()
    b["noise"] = torch.rand(2, 16)
    preds, mask = pipe.objective.predict(pipe.parts, b)
    b["pixel_valid"][0, :, 8:] = False  # sample 0: bottom half of each patch unusable
    w = (mask[..., None] * b["pixel_valid"].unsqueeze(-1).expand(-1, -1, -1, 6).reshape(2, 16, 96))
    expected = (w * (preds[0] - b["patches"]) ** 2).sum() / w.sum()
    torch.testing.assert_close(pipe.model(b)[0], expected, rtol=1e-5, atol=1e-6)


def test_a_batch_with_nothing_usable_masked_gives_a_zero_loss_that_backpropagates() -> None:
    pipe = built()
    b = batch()
    b["pixel_valid"][:] = False
    b["valid_fraction"][:] = 0
    loss, metrics = pipe.model(b)
    assert float(loss.detach()) == 0.0 and metrics["valid_share"] == 0.0
    loss.backward()


def test_norm_pix_loss_reconstructions_come_back_in_pixel_units() -> None:
    pipe = built(norm_pix_loss=True)
    b = batch()
    out = pipe.objective.reconstruct(pipe.parts, b)
    assert out["pred"].shape == out["target"].shape == out["mask"].shape == (2, 16, 96)
    assert out["mask"].sum() == 24 * 96 and out["valid"].all()


def test_band_groups_reconstruct_each_group_with_its_own_head() -> None:
    cfg = model_config()
    cfg["tokenizer"]["band_groups"] = [["blue", "green", "red"], ["nir08"], ["swir16", "swir22"]]
    pipe = compose(cfg).build(prepare=False)
    b = batch()
    b["positions"] = b["positions"].repeat(3, 1)
    b["valid_fraction"] = b["valid_fraction"].repeat(1, 3)
    loss, metrics = pipe.model(b)
    loss.backward()
    assert metrics["masked_tokens"] == 2 * 36
    assert [tuple(h.weight.shape) for h in pipe.objective.decoder_pred] == [(48, 16), (16, 16), (32, 16)]
    rec = pipe.objective.reconstruct(pipe.parts, b)
    assert rec["pred"].shape == (2, 16, 96)


def test_training_lowers_the_loss_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    pipe = built()
    b = batch()
    b["noise"] = torch.rand(2, 16)
    opt = torch.optim.AdamW(pipe.model.parameters(), lr=3e-3)
    first = float(pipe.model(b)[0].detach())
    for _ in range(80):
        opt.zero_grad()
        pipe.model(b)[0].backward()
        opt.step()
    assert float(pipe.model(b)[0].detach()) < 0.75 * first


def test_feature_api_returns_cls_first_for_chips_of_any_grid() -> None:
    pipe = built()
    encoder = ImageEncoder(pipe.parts.embed, pipe.parts.positional, pipe.parts.backbone)
    chips = torch.randn(2, 6, 1, 16, 16)
    feats = encoder(chips)
    assert feats.shape == (2, 1 + 16, 32)
    assert encoder(chips[:, :, 0]).shape == (2, 17, 32)  # (B, C, H, W)
    assert encoder(torch.randn(1, 6, 24, 40)).shape == (1, 1 + 6 * 10, 32)  # non-square, another grid
    # the same tokens as the pipeline's path: embed(patches) + positions -> backbone
    b = batch()
    direct = pipe.parts.backbone(pipe.parts.embed(b["patches"]), pipe.parts.positional, b["positions"])
    chips_b = torch.randn(2, 6, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(encoder(chips_b), direct, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="height=18 is not a multiple of 4"):
        encoder(torch.randn(1, 6, 18, 16))


def test_masked_pixels_weigh_micro_batches_into_the_big_batch_loss_and_gradient() -> None:
    """With clouds, micro-batches hold different numbers of valid masked pixels: weighting each micro-batch's loss by
    ``masked_pixels`` (the objective's ``loss_weight``, what the trainer does) gives the big batch's loss and
    gradient; an equal-weight mean of the micro-batch losses does not."""
    pipe = built()
    big = batch(b=8, seed=3)
    big["noise"] = torch.rand(8, 16, generator=torch.Generator().manual_seed(4))
    cloud = torch.rand(8, 16, 16, generator=torch.Generator().manual_seed(5)) < torch.linspace(0.0, 0.9, 8)[:, None, None]
    big["pixel_valid"] = ~cloud
    assert pipe.model.loss_weight == "masked_pixels" and "masked_pixels" in pipe.model.count_metrics

    def grads() -> list[torch.Tensor]:
        out = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in pipe.model.parameters()]
        pipe.model.zero_grad(set_to_none=True)
        return out

    pipe.model.zero_grad(set_to_none=True)
    loss, _ = pipe.model(big)
    loss.backward()
    whole = grads()
    parts = [{k: (v[i:i + 2] if k != "positions" else v) for k, v in big.items()} for i in range(0, 8, 2)]
    weighted, plain, total = 0.0, 0.0, 0.0
    for part in parts:
        part_loss, metrics = pipe.model(part)
        w = float(metrics["masked_pixels"])
        (part_loss * w).backward()
        value = float(part_loss.detach())
        weighted, plain, total = weighted + value * w, plain + value / 4, total + w
    split = [g / total for g in grads()]
    value = float(loss.detach())
    assert weighted / total == pytest.approx(value, rel=1e-5)
    assert abs(plain - value) > 1e-3 * abs(value)  # equal weights would be wrong here
    for a, b in zip(whole, split):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
