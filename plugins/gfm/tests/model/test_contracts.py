"""Composition rejects imagery pipelines whose parts do not fit, naming both components and the values."""

from __future__ import annotations

from typing import Any

import pytest

from registry_core import ComponentSpec, ConfigError, Registry, compose, hookimpl
from registry_gfm.backbones.specs import ViTConfig

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]


def imagery(**slots: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "data": {"use": "zarr-chips", "store": "unused.zarr", "chip_size": 32, "bands": BANDS},
        "tokenizer": {"use": "patch", "patch_size": 8},
        "positional": {"use": "sincos-2d"},
        "backbone": {"use": "vit", "embed_dim": 64, "depth": 1, "heads": 4},
        "objective": {"use": "mae", "decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 4},
    }
    cfg.update(slots)
    return cfg


def problems(config: dict[str, Any], registry: Registry | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        compose(config, registry)
    return str(info.value)


def test_the_imagery_stack_composes_and_wires_its_ports() -> None:
    p = compose(imagery())
    tok = p.slots["tokenizer"].config
    assert list(tok.bands) == BANDS and tok.frames == 1 and tok.chip_size == 32  # wired from the data source
    assert p.slots["positional"].config.embed_dim == 64 and p.slots["objective"].config.embed_dim == 64


def test_next_token_over_vit_is_rejected_as_not_causal() -> None:
    msg = problems(imagery(objective={"use": "next-token", "vocab_size": 10}))
    assert "objective `next-token` requires causal=true but backbone `vit` provides causal=false" in msg


def test_sincos_2d_needs_a_2d_grid() -> None:
    text = {"data": {"use": "text-shards", "seq_len": 32}, "tokenizer": {"use": "bpe", "vocab_size": 300},
            "positional": {"use": "sincos-2d"}, "backbone": {"use": "gpt", "embed_dim": 64, "depth": 1, "heads": 4},
            "objective": {"use": "next-token"}}
    msg = problems(text)
    assert "positional `sincos-2d` provides grid=2 but tokenizer `bpe` provides grid=1" in msg
    msg = problems(imagery(backbone={"use": "gpt", "embed_dim": 64, "depth": 1, "heads": 4}))
    assert "backbone `gpt` provides grid=1 but tokenizer `patch` provides grid=2" in msg


def test_bpe_over_zarr_chips_is_rejected_by_modality() -> None:
    msg = problems(imagery(tokenizer={"use": "bpe", "vocab_size": 300}))
    assert "tokenizer `bpe` has modality=text but data `zarr-chips` has modality=imagery" in msg


def test_sincos_3d_accepts_2d_and_3d_token_grids_and_tubelets_give_3d() -> None:
    compose(imagery(positional={"use": "sincos-3d"}))
    p = compose(imagery(positional={"use": "sincos-3d"}, tokenizer={"use": "patch", "patch_size": 8, "tubelet": 1},
                        data={"use": "zarr-chips", "store": "u.zarr", "chip_size": 32, "frames": 3, "bands": BANDS}))
    assert p.slots["tokenizer"].provides()["grid"] == 3
    msg = problems(imagery(data={"use": "zarr-chips", "store": "u.zarr", "chip_size": 32, "frames": 3, "bands": BANDS}))
    assert "positional `sincos-2d` provides grid=2 but tokenizer `patch` provides grid=3" in msg


class _NoMaskingPlugin:
    """A third-party ViT whose attention cannot drop tokens."""

    @hookimpl
    def registry_core_components(self) -> list[ComponentSpec]:
        return [ComponentSpec(kind="backbone", name="plain-vit", target="registry_gfm.backbones.vit:build",
                              summary="A ViT without token dropping.", modality="imagery", config=ViTConfig,
                              provides={"embed_dim": None, "heads": None, "causal": False,
                                        "position_modes": ["additive"], "supports_masking": False})]


def test_mae_over_a_backbone_without_masking_support_is_rejected() -> None:
    reg = Registry(plugins=[_NoMaskingPlugin()], use_env=False)
    msg = problems(imagery(backbone={"use": "plain-vit", "embed_dim": 64, "depth": 1, "heads": 4}), reg)
    assert "objective `mae` requires supports_masking=true but backbone `plain-vit` provides supports_masking=false" in msg


def test_band_groups_must_name_the_data_bands() -> None:
    p = compose(imagery(tokenizer={"use": "patch", "patch_size": 8, "band_groups": [["blue", "green", "red"], ["nir08"]]}))
    with pytest.raises(ValueError, match="must use every band once"):
        p.build(prepare=False)


def test_data_bands_and_patch_size_must_match_the_prithvi_weights() -> None:
    weights = {"use": "prithvi", "path": "Prithvi_100M.pt"}
    swapped = ["green", "blue", *BANDS[2:]]
    msg = problems(imagery(data={"use": "zarr-chips", "store": "u.zarr", "chip_size": 32, "bands": swapped},
                           tokenizer={"use": "patch", "patch_size": 16}, weights=weights))
    assert "weights `prithvi` provides bands=[blue, green, red, nir08, swir16, swir22] but data `zarr-chips` " \
        "provides bands=[green, blue, red, nir08, swir16, swir22] (same bands in another order" in msg
    assert "patch_size" not in msg
    msg = problems(imagery(data={"use": "zarr-chips", "store": "u.zarr", "chip_size": 32, "bands": BANDS[:5]},
                           tokenizer={"use": "patch", "patch_size": 16}, weights=weights))
    assert "swir22" in msg
    msg = problems(imagery(weights=weights))
    assert "weights `prithvi` provides patch_size=16 but tokenizer `patch` provides patch_size=8" in msg
    # an explicit band_map defers the check to the weights, which map (and check) each band when built
    p = compose(imagery(data={"use": "zarr-chips", "store": "u.zarr", "chip_size": 32, "bands": swapped},
                        tokenizer={"use": "patch", "patch_size": 16}, weights={**weights, "band_map": {}}))
    assert list(p.slots["weights"].config.data_bands) == swapped
