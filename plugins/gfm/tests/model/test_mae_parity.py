"""Parity with ``transformers`` ``ViTMAEForPreTraining``: its weights converted through the key table, the same noise."""

from __future__ import annotations

import pytest
import torch

from registry_core import compose
from registry_core.nn import load_parts
from registry_gfm.positions.sincos import sincos_2d_table
from registry_gfm.tokenizers.patch_layout import patchify, token_grid_positions
from registry_gfm.weights._prithvi_keys import HF_VITMAE_V5

transformers = pytest.importorskip("transformers")

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]


def hf_model(norm_pix_loss: bool) -> torch.nn.Module:
    cfg = transformers.ViTMAEConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256, image_size=32,
        patch_size=8, num_channels=6, decoder_hidden_size=32, decoder_num_hidden_layers=2,
        decoder_num_attention_heads=4, decoder_intermediate_size=128, mask_ratio=0.75, norm_pix_loss=norm_pix_loss,
        layer_norm_eps=1e-6, hidden_act="gelu", qkv_bias=True, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    model = transformers.ViTMAEForPreTraining(cfg).eval()
    with torch.no_grad():  # a fresh model may leave its fixed tables at zero: give both MAE's sin-cos tables
        model.vit.embeddings.position_embeddings.copy_(sincos_2d_table(4, 4, 64, cls_token=True)[None])
        model.decoder.decoder_pos_embed.copy_(sincos_2d_table(4, 4, 32, cls_token=True)[None])
    return model


def ours(norm_pix_loss: bool) -> object:
    return compose({
        "data": {"use": "zarr-chips", "store": "unused.zarr", "chip_size": 32, "bands": BANDS},
        "tokenizer": {"use": "patch", "patch_size": 8},
        "positional": {"use": "sincos-2d"},
        "backbone": {"use": "vit", "embed_dim": 64, "depth": 2, "heads": 4},
        "objective": {"use": "mae", "decoder_dim": 32, "decoder_depth": 2, "decoder_heads": 4,
                      "norm_pix_loss": norm_pix_loss},
    }).build(prepare=False)


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_loss_and_reconstruction_equal_hf_vitmae(norm_pix_loss: bool) -> None:
    hf = hf_model(norm_pix_loss)
    pipe = ours(norm_pix_loss)
    report = load_parts(pipe.parts, hf.state_dict(), fills=("encoder", "decoder"), table=HF_VITMAE_V5, source="hf")
    assert len(report.loaded) == sum(1 for _ in pipe.model.state_dict())  # every tensor of ours came from theirs
    pipe.model.eval()
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(3, 6, 32, 32, generator=g)
    noise = torch.rand(3, 16, generator=g)
    with torch.no_grad():
        theirs = hf(pixel_values=pixels, noise=noise)
        batch = {"patches": patchify(pixels, 8), "positions": token_grid_positions((1, 4, 4)), "noise": noise}
        loss, _ = pipe.model(batch)
        preds, mask = pipe.objective.predict(pipe.parts, batch)
    torch.testing.assert_close(mask, theirs.mask)
    torch.testing.assert_close(preds[0], theirs.logits, rtol=1e-5, atol=1e-5)
    assert abs(float(loss) - float(theirs.loss)) < 1e-5
