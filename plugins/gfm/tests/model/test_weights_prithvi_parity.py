"""``prithvi`` against TerraTorch's own Prithvi module: features of the V1 .pt, V2 .pt and V2 .safetensors layouts.

The fixture (tests/data/prithvi_terratorch) was written by TerraTorch's ``PrithviMAE`` with non-trivial norms
and biases; its README says how to regenerate it. With timm's 1e-6 instead of the reference's LayerNorm
epsilon the same weights land 5.0e-3 away, so these tests tell the two apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from registry_core import ConfigError, compose
from registry_gfm.weights.prithvi import PrithviWeights
from registry_gfm.weights.specs import PrithviConfig

FIXTURE = Path(__file__).resolve().parents[4] / "tests" / "data" / "prithvi_terratorch"
#: Largest feature difference allowed against the reference module (float32, 2 blocks, 589 tokens).
TOLERANCE = 1e-4


def chips(shape: tuple[int, ...] = (2, 6, 3, 224, 224)) -> torch.Tensor:
    """The fixture's input chips: the same formula as make_fixture.py."""
    i = np.arange(int(np.prod(shape)), dtype=np.float64)
    return torch.from_numpy(np.sin(i * 0.6180339887 + np.cos(i * 0.0123)).reshape(shape).astype(np.float32))


def v1_layout(v2: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Prithvi-100M's flat MAE keys: the EO-2.0 keys without their ``encoder.`` / ``decoder.`` prefix."""
    return {k.removeprefix("encoder.").removeprefix("decoder."): v for k, v in v2.items()}


def layout(kind: str, tmp_path: Path) -> Path:
    """The fixture's weights as ``v1.pt``, ``v2.pt`` or ``v2.safetensors`` (the file TerraTorch's module wrote)."""
    source = FIXTURE / "prithvi_v2_tiny.safetensors"
    if kind == "v2.safetensors":
        return source
    tensors = load_file(source)
    path = tmp_path / f"prithvi_{kind}"
    torch.save(v1_layout(tensors) if kind == "v1.pt" else tensors, path)
    return path


@pytest.mark.parametrize("kind", ["v1.pt", "v2.pt", "v2.safetensors"])
def test_features_match_terratorch(kind: str, tmp_path: Path) -> None:
    weights = PrithviWeights(PrithviConfig(path=str(layout(kind, tmp_path)), heads=4))
    assert (weights.version, weights.layer_norm_eps) == (kind[:2], 1e-5)
    expected = load_file(FIXTURE / "expected_features.safetensors")["features"]
    with torch.no_grad():
        ours = weights.encoder()(chips())
    assert ours.shape == expected.shape == (2, 1 + 3 * 14 * 14, 64)
    difference = (ours - expected).abs().max().item()
    assert difference <= TOLERANCE, f"{kind}: largest feature difference {difference:.3g} against TerraTorch"


def test_timms_epsilon_is_told_apart(tmp_path: Path) -> None:
    """The fixture can catch the defect it was made for: the same weights at eps 1e-6 miss the reference."""
    weights = PrithviWeights(PrithviConfig(path=str(layout("v2.safetensors", tmp_path)), heads=4))
    encoder = weights.encoder()
    for block in encoder.backbone.modules():
        if isinstance(block, torch.nn.LayerNorm):
            block.eps = 1e-6
    expected = load_file(FIXTURE / "expected_features.safetensors")["features"]
    with torch.no_grad():
        assert (encoder(chips()) - expected).abs().max().item() > 10 * TOLERANCE


def _pipeline(store: Path, backbone: dict[str, object]) -> dict[str, object]:
    return {
        "data": {"use": "zarr-chips", "store": str(store), "chip_size": 32,
                 "bands": ["blue", "green", "red", "nir08", "swir16", "swir22"]},
        "tokenizer": {"use": "patch", "patch_size": 16},
        "positional": {"use": "sincos-3d"},
        "backbone": {"use": "vit", "embed_dim": 64, "depth": 2, "heads": 4, **backbone},
        "objective": {"use": "mae", "decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 4},
        "weights": {"use": "prithvi", "path": str(FIXTURE / "prithvi_v2_tiny.safetensors"), "heads": 4,
                    "decoder_heads": 4, "fills": "encoder+decoder"},
    }


def test_composition_takes_the_weights_epsilon_and_refuses_another(lsat7_store: Path) -> None:
    pipe = compose(_pipeline(lsat7_store, {}))
    assert pipe.slots["backbone"].config.layer_norm_eps == 1e-5
    assert pipe.slots["objective"].config.layer_norm_eps == 1e-5
    with pytest.raises(ConfigError, match=r"backbone `vit` sets layer_norm_eps=1e-06 but weights `prithvi` provides "
                                          r"layer_norm_eps=1e-05"):
        compose(_pipeline(lsat7_store, {"layer_norm_eps": 1e-6}))


def test_without_weights_the_vit_keeps_maes_epsilon(lsat7_store: Path) -> None:
    config = _pipeline(lsat7_store, {})
    del config["weights"]
    pipe = compose(config).build()
    assert pipe.parts.backbone.eps == pipe.parts.objective.decoder.eps == 1e-6


def _run_folder(path: Path, config: str) -> Path:
    path.mkdir()
    (path / "pipeline.toml").write_text(config)
    (path / "model.safetensors").write_bytes(b"")  # read_run_config checks it is there; from-run reads it at build
    return path


def test_from_run_carries_the_epsilon_its_run_trained_with(tmp_path: Path) -> None:
    """A run leaves wired values out of its pipeline.toml: from-run finds prithvi's epsilon through the run's
    weights (and through a chain of runs), a value the run set itself, or none (the backbone default)."""
    from registry_gfm.weights.specs import FromRunConfig

    pretrained = _run_folder(tmp_path / "mae", '[backbone]\nuse = "gfm:vit"\n[weights]\nuse = "gfm:prithvi"\n'
                                                'path = "gone.pt"\n')
    finetuned = _run_folder(tmp_path / "seg", f'[backbone]\nuse = "gfm:vit"\n[weights]\nuse = "gfm:from-run"\n'
                                              f'path = "{pretrained}"\n')
    own = _run_folder(tmp_path / "own", '[backbone]\nuse = "gfm:vit"\nlayer_norm_eps = 1e-3\n')
    plain = _run_folder(tmp_path / "plain", '[backbone]\nuse = "gfm:vit"\n')
    assert [FromRunConfig(path=str(p)).layer_norm_eps for p in (pretrained, finetuned, own, plain)] == [
        1e-5, 1e-5, 1e-3, None]
