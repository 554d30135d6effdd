"""``satmae`` against SatMAE's own group-channel model code: the encoder features of its MAE and of its finetuned
ViT, from the fixture tests/data/satmae_groupchannel (written by SatMAE's modules; its README says how).

SatMAE's layout in ours: the ``patch`` tokenizer with its band groups and ``group_embed_dim`` (the channel
embedding in the last channels), ``sincos-2d`` with ``table_dim`` (positions in the first), a ViT with a cls token
and LayerNorm eps 1e-6.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from registry_core import compose, get_registry
from registry_core.testing import LoopbackHub
from registry_gfm.encoder import ImageEncoder
from registry_gfm.weights.satmae import SatMAEWeights, satmae_options
from registry_gfm.weights.specs import SATMAE_BANDS

FIXTURE = Path(__file__).resolve().parents[4] / "tests" / "data" / "satmae_groupchannel"
#: Largest feature difference allowed against SatMAE's code (it runs attention as an explicit softmax, we as SDPA).
TOLERANCE = 1e-5


def chips(shape: tuple[int, ...] = (2, 10, 32, 32)) -> torch.Tensor:
    """The fixture's input chips: the formula of its make_fixture.py."""
    i = np.arange(int(np.prod(shape)), dtype=np.float64)
    return torch.from_numpy(np.sin(i * 0.6180339887 + np.cos(i * 0.0123)).reshape(shape).astype(np.float32))


def expected(key: str) -> torch.Tensor:
    return load_file(FIXTURE / "expected_features.safetensors")[key]


@pytest.mark.parametrize(("file", "key"), [("satmae_tiny.safetensors", "features"),
                                           ("satmae_vit_tiny.safetensors", "vit_cls")])
def test_features_match_satmaes_own_model(file: str, key: str) -> None:
    weights = get_registry().build("weights", "satmae", path=str(FIXTURE / file), heads=4)
    assert isinstance(weights, SatMAEWeights)
    assert (weights.dims["groups"], weights.dims["channel_embed"], weights.dims["grid"]) == (3, 16, 4)
    with torch.no_grad():
        ours = weights.encoder()(chips())
    ours = ours if key == "features" else ours[:, 0]  # the finetuned ViT's forward_features: the normed cls token
    assert ours.shape == expected(key).shape
    difference = (ours - expected(key)).abs().max().item()
    assert difference <= TOLERANCE, f"{file}: largest difference {difference:.3g} against SatMAE"


def test_timms_default_epsilon_is_told_apart() -> None:
    encoder = get_registry().build("weights", "satmae", path=str(FIXTURE / "satmae_tiny.safetensors"), heads=4).encoder()
    for module in encoder.backbone.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.eps = 1e-5
    with torch.no_grad():
        assert (encoder(chips()) - expected("features")).abs().max().item() > 100 * TOLERANCE


def test_a_composed_pipeline_is_satmaes_encoder() -> None:
    weights = get_registry().build("weights", "satmae", path=str(FIXTURE / "satmae_tiny.safetensors"), heads=4)
    options = satmae_options(weights.dims)
    pipe = compose({
        "data": {"use": "zarr-chips", "store": "unused.zarr", "chip_size": 32, "bands": list(SATMAE_BANDS)},
        **options,
        "objective": {"use": "mae", "decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 4},
        "weights": {"use": "satmae", "path": str(FIXTURE / "satmae_tiny.safetensors"), "heads": 4},
    })
    assert pipe.slots["backbone"].config.layer_norm_eps == 1e-6  # wired from the weights
    built = pipe.build(prepare=False)
    encoder = ImageEncoder(built.parts.embed, built.parts.positional, built.parts.backbone).eval()
    with torch.no_grad():
        assert (encoder(chips()) - expected("features")).abs().max().item() <= TOLERANCE


def test_a_model_without_satmaes_layout_is_refused() -> None:
    weights = get_registry().build("weights", "satmae", path=str(FIXTURE / "satmae_tiny.safetensors"), heads=4)
    options = satmae_options(weights.dims)
    del options["tokenizer"]["group_embed_dim"]  # the group embedding over the full width
    options["positional"].pop("table_dim")
    pipe = compose({"data": {"use": "zarr-chips", "store": "unused.zarr", "chip_size": 32,
                             "bands": list(SATMAE_BANDS)}, **options,
                    "objective": {"use": "mae", "decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 4},
                    "weights": {"use": "satmae", "path": str(FIXTURE / "satmae_tiny.safetensors"), "heads": 4}})
    with pytest.raises(ValueError, match=r"satmae: the model does not match .*satmae_tiny.safetensors: "
                                         r"group_embed_dim=64 \(checkpoint: 16\); the positions' table_dim=64 "
                                         r"\(checkpoint: 48\); build it with .*satmae_options"):
        pipe.build(prepare=False)


def test_a_trained_position_table_and_other_groups_are_refused(tmp_path: Path) -> None:
    tensors = load_file(FIXTURE / "satmae_tiny.safetensors")
    moved = dict(tensors, pos_embed=tensors["pos_embed"] + 0.01)
    save_file(moved, tmp_path / "moved.safetensors")
    with pytest.raises(ValueError, match=r"has a pos_embed 0.01 away from the fixed 2-D sin-cos table"):
        get_registry().build("weights", "satmae", path=str(tmp_path / "moved.safetensors"), heads=4)
    two = {k: v for k, v in tensors.items() if not k.startswith("patch_embed.2.")}
    two["channel_embed"] = tensors["channel_embed"][:, :2]
    save_file(two, tmp_path / "two.safetensors")
    with pytest.raises(ValueError, match=r"has band groups of \[4, 4\] bands; SatMAE's are"):
        get_registry().build("weights", "satmae", path=str(tmp_path / "two.safetensors"), heads=4)


def test_any_hub_repo_in_satmaes_layout(hub: LoopbackHub) -> None:
    """The generic form: the loader, a repo id and the checkpoint's name (no card needed)."""
    commit = hub.add_repo("acme/satmae-tiny", {"checkpoint.safetensors": (FIXTURE / "satmae_tiny.safetensors").read_bytes()})
    weights = get_registry().build("weights", "satmae", hub="acme/satmae-tiny", files=["checkpoint.safetensors"],
                                   heads=4)
    assert weights.pulled is not None and weights.pulled.commit == commit
    with torch.no_grad():
        assert (weights.encoder()(chips()) - expected("features")).abs().max().item() <= TOLERANCE
