"""The ``prithvi`` weights: V1 / V2 layouts, safe reading, layout and band checks, features against plain torch."""

from __future__ import annotations

import importlib.util
import math
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

from registry_core.interfaces import ModelParts
from registry_core.nn import CheckpointError, Transformer, part_tensors
from registry_gfm.weights._prithvi_keys import HF_VITMAE, HF_VITMAE_V5, PRITHVI_V1, PRITHVI_V2
from registry_gfm.weights.prithvi import PUBLISHED_BANDS, PUBLISHED_STATS, PrithviWeights, prithvi_state_dict
from registry_gfm.weights.specs import PrithviConfig

BANDS = list(PUBLISHED_BANDS)


# -- checkpoints with exactly Prithvi's key layouts ------------------------------------------------------------


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """MAE's 1-D table: sin of pos * omega then cos, omega = 1 / 10000^(i / (dim/2))."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    out = pos.double().reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat((out.sin(), out.cos()), dim=1)


def sincos_3d(dim: int, t: int, h: int, w: int) -> torch.Tensor:
    """Prithvi's 3-D table (w, h, t parts of 6/16, 6/16, 4/16 of the width) with a zero cls row: (1, 1+t*h*w, dim)."""
    wd, td = dim // 16 * 6, dim // 16 * 4
    ti, hi, wi = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    table = torch.cat((sincos_1d(wd, torch.arange(w))[wi.reshape(-1)], sincos_1d(wd, torch.arange(h))[hi.reshape(-1)],
                       sincos_1d(td, torch.arange(t))[ti.reshape(-1)]), dim=1)
    return torch.cat((torch.zeros(1, dim, dtype=table.dtype), table)).float().unsqueeze(0)


def _block(out: dict[str, torch.Tensor], prefix: str, width: int, hidden: int, g: torch.Generator) -> None:
    def rnd(*shape: int, std: float = 0.02) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    out.update({
        f"{prefix}norm1.weight": 1 + rnd(width, std=0.1), f"{prefix}norm1.bias": rnd(width),
        f"{prefix}attn.qkv.weight": rnd(3 * width, width, std=width**-0.5), f"{prefix}attn.qkv.bias": rnd(3 * width),
        f"{prefix}attn.proj.weight": rnd(width, width, std=width**-0.5), f"{prefix}attn.proj.bias": rnd(width),
        f"{prefix}norm2.weight": 1 + rnd(width, std=0.1), f"{prefix}norm2.bias": rnd(width),
        f"{prefix}mlp.fc1.weight": rnd(hidden, width, std=width**-0.5), f"{prefix}mlp.fc1.bias": rnd(hidden),
        f"{prefix}mlp.fc2.weight": rnd(width, hidden, std=hidden**-0.5), f"{prefix}mlp.fc2.bias": rnd(width),
    })


def checkpoint(version: str, *, width: int = 64, depth: int = 2, dec_width: int | None = 32, dec_depth: int = 1,
               frames: int = 1, patch: int = 16, channels: int = 6, scales: bool = False, seed: int = 0
               ) -> dict[str, torch.Tensor]:
    """Random tensors in exactly Prithvi ``version``'s keys and shapes (fixed tables as Prithvi computes them)."""
    g = torch.Generator().manual_seed(seed)
    enc, dec = ("encoder.", "decoder.") if version == "v2" else ("", "")
    grid = 224 // patch
    out = {
        f"{enc}patch_embed.proj.weight": torch.randn(width, channels, 1, patch, patch, generator=g) * 0.02,
        f"{enc}patch_embed.proj.bias": torch.randn(width, generator=g) * 0.02,
        f"{enc}cls_token": torch.randn(1, 1, width, generator=g) * 0.02,
        f"{enc}pos_embed": sincos_3d(width, frames, grid, grid),
        f"{enc}norm.weight": 1 + torch.randn(width, generator=g) * 0.1, f"{enc}norm.bias": torch.randn(width, generator=g),
    }
    for i in range(depth):
        _block(out, f"{enc}blocks.{i}.", width, 4 * width, g)
    if dec_width is not None:
        out.update({
            f"{dec}decoder_embed.weight": torch.randn(dec_width, width, generator=g) * 0.02,
            f"{dec}decoder_embed.bias": torch.randn(dec_width, generator=g) * 0.02,
            f"{dec}mask_token": torch.randn(1, 1, dec_width, generator=g) * 0.02,
            f"{dec}decoder_pos_embed": sincos_3d(dec_width, frames, grid, grid),
            f"{dec}decoder_norm.weight": torch.ones(dec_width), f"{dec}decoder_norm.bias": torch.zeros(dec_width),
            f"{dec}decoder_pred.weight": torch.randn(patch * patch * channels, dec_width, generator=g) * 0.02,
            f"{dec}decoder_pred.bias": torch.randn(patch * patch * channels, generator=g) * 0.02,
        })
        for i in range(dec_depth):
            _block(out, f"{dec}decoder_blocks.{i}.", dec_width, 4 * dec_width, g)
    if scales:
        out.update({"encoder.temporal_embed_enc.scale": torch.tensor([0.3]),
                    "encoder.location_embed_enc.scale": torch.tensor([0.2]),
                    "decoder.temporal_embed_dec.scale": torch.tensor([0.4]),
                    "decoder.location_embed_dec.scale": torch.tensor([0.5])})
    return out


def save(tensors: dict[str, Any], path: Path) -> Path:
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    else:
        torch.save(tensors, path)
    return path


def weights(path: Path, **options: Any) -> PrithviWeights:
    return PrithviWeights(PrithviConfig(path=str(path), **options))


# -- the model parts a pipeline would build (plain modules with the contract's names) ---------------------------


class Embed(nn.Module):
    def __init__(self, channels: int, width: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(channels, width, kernel_size=(1, patch, patch), stride=(1, patch, patch))

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.proj(chips).flatten(2).transpose(1, 2)


class Positions(nn.Module):
    """Adds a fixed table (not part of the state): stands in for the stack's SinCos3D."""

    mode = "additive"

    def __init__(self, table: torch.Tensor, scales: bool = False) -> None:
        super().__init__()
        self.register_buffer("table", table, persistent=False)
        if scales:
            self.time_scale = nn.Parameter(torch.ones(1))
            self.location_scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.table


class Decoder(nn.Module):
    """The MAE objective's modules, named as in the contract."""

    def __init__(self, width: int, dec_width: int, depth: int, out: int, scales: bool = False) -> None:
        super().__init__()
        self.decoder_embed = nn.Linear(width, dec_width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_width))
        self.decoder = Transformer(dec_width, depth, 16, causal=False, eps=1e-5)
        self.decoder_pred = nn.Linear(dec_width, out)
        if scales:
            self.decoder_positional = Positions(torch.zeros(1), scales=True)


def parts_for(w: PrithviWeights, *, decoder: bool = False, scales: bool = False, channels: int | None = None,
              table: torch.Tensor | None = None) -> ModelParts:
    d = w.dims
    c = channels or len(w.bands)
    objective = Decoder(d.embed_dim, d.decoder_embed_dim or 0, d.decoder_depth or 0, d.patch_size**2 * c, scales) \
        if decoder else None
    backbone = Transformer(d.embed_dim, d.depth, d.heads, causal=False, eps=w.layer_norm_eps, prefix_tokens=1)
    pos = Positions(table if table is not None else torch.zeros(1), scales)
    return ModelParts(Embed(c, d.embed_dim, d.patch_size), pos, backbone, objective)


def reference_features(ck: dict[str, torch.Tensor], chips: torch.Tensor, heads: int, prefix: str = "",
                       eps: float = 1e-5) -> torch.Tensor:
    """Prithvi's encoder written out in plain torch: conv3d patches + pos_embed, cls, pre-LN blocks, final norm.

    Our own reading, for shapes no fixture covers; model/test_weights_prithvi_parity.py holds the
    comparison against TerraTorch's module itself."""
    w = ck[f"{prefix}patch_embed.proj.weight"]
    x = F.conv3d(chips, w, ck[f"{prefix}patch_embed.proj.bias"], stride=tuple(w.shape[2:])).flatten(2).transpose(1, 2)
    pos = ck[f"{prefix}pos_embed"]
    x = x + pos[:, 1:]
    b, _, width = x.shape
    x = torch.cat(((ck[f"{prefix}cls_token"] + pos[:, :1]).expand(b, -1, -1), x), dim=1)
    hd = width // heads
    i = 0
    while f"{prefix}blocks.{i}.norm1.weight" in ck:
        p = f"{prefix}blocks.{i}."
        h = F.layer_norm(x, (width,), ck[p + "norm1.weight"], ck[p + "norm1.bias"], eps=eps)
        q, k, v = F.linear(h, ck[p + "attn.qkv.weight"], ck[p + "attn.qkv.bias"]).reshape(
            b, -1, 3, heads, hd).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1) @ v
        x = x + F.linear(att.transpose(1, 2).reshape(b, -1, width), ck[p + "attn.proj.weight"], ck[p + "attn.proj.bias"])
        h = F.layer_norm(x, (width,), ck[p + "norm2.weight"], ck[p + "norm2.bias"], eps=eps)
        x = x + F.linear(F.gelu(F.linear(h, ck[p + "mlp.fc1.weight"], ck[p + "mlp.fc1.bias"])),
                         ck[p + "mlp.fc2.weight"], ck[p + "mlp.fc2.bias"])
        i += 1
    return F.layer_norm(x, (width,), ck[f"{prefix}norm.weight"], ck[f"{prefix}norm.bias"], eps=eps)


def ours_features(parts: ModelParts, chips: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = parts.backbone(parts.embed(chips), parts.positional)
        return out


# -- tests -----------------------------------------------------------------------------------------------------


def test_v1_real_widths_load_and_match_a_plain_torch_forward(tmp_path: Path) -> None:
    ck = checkpoint("v1", width=768, depth=1, dec_width=512, frames=3)
    assert tuple(ck["patch_embed.proj.weight"].shape) == (768, 6, 1, 16, 16)
    assert tuple(ck["pos_embed"].shape) == (1, 589, 768)
    w = weights(save(ck, tmp_path / "Prithvi_100M.pt"))
    assert w.version == "v1" and w.files() == [tmp_path / "Prithvi_100M.pt"]
    assert {k: w.meta[k] for k in ("embed_dim", "depth", "heads", "frames", "tubelet", "patch_size", "decoder_embed_dim",
                                   "decoder_depth", "decoder_heads", "version", "bands")} == {
        "embed_dim": 768, "depth": 1, "heads": 12, "frames": 3, "tubelet": 1, "patch_size": 16, "decoder_embed_dim": 512,
        "decoder_depth": 1, "decoder_heads": 16, "version": "v1", "bands": BANDS}
    assert (w.meta["mean"], w.meta["std"]) == tuple(list(v) for v in PUBLISHED_STATS["v1"])
    parts = parts_for(w, table=ck["pos_embed"][:, 1:])
    w.load_into(parts)
    chips = torch.randn(2, 6, 3, 224, 224)
    torch.testing.assert_close(ours_features(parts, chips), reference_features(ck, chips, heads=12), atol=1e-4, rtol=1e-4)


def test_v2_safetensors_round_trips_through_the_table(tmp_path: Path) -> None:
    ck = checkpoint("v2", frames=2, dec_width=32, dec_depth=2)
    w = weights(save(ck, tmp_path / "prithvi.safetensors"), fills="encoder+decoder", heads=4)
    assert (w.version, w.meta["frames"], w.meta["heads"], w.fills) == ("v2", 2, 4, ("encoder", "decoder"))
    parts = parts_for(w, decoder=True)
    w.load_into(parts)
    back = prithvi_state_dict(parts, "v2", ("encoder", "decoder"))
    fixed = {"encoder.pos_embed", "decoder.decoder_pos_embed"}
    assert set(back) == set(ck) - fixed
    for key, value in back.items():
        assert torch.equal(value, ck[key]), key


def test_v2_features_match_the_reference(tmp_path: Path) -> None:
    ck = checkpoint("v2", frames=2, dec_width=None)
    w = weights(save(ck, tmp_path / "enc.pt"), heads=4)
    parts = parts_for(w, table=ck["encoder.pos_embed"][:, 1:])
    w.load_into(parts)
    chips = torch.randn(2, 6, 2, 224, 224)
    torch.testing.assert_close(ours_features(parts, chips), reference_features(ck, chips, 4, "encoder."),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("wrapper", ["model", "state_dict"])
def test_wrapped_checkpoints_load(tmp_path: Path, wrapper: str) -> None:
    ck = checkpoint("v1", dec_width=None)
    w = weights(save({wrapper: ck, "epoch": torch.tensor(3)}, tmp_path / "wrapped.pt"))
    assert w.version == "v1" and w.meta["decoder_embed_dim"] is None


def test_decoder_keys_are_dropped_for_encoder_only_loading(tmp_path: Path) -> None:
    ck = checkpoint("v2")
    w = weights(save(ck, tmp_path / "mae.safetensors"), heads=4)  # fills = encoder
    parts = parts_for(w)  # no objective at all
    w.load_into(parts)
    assert torch.equal(part_tensors(parts)["backbone.prefix"], ck["encoder.cls_token"])
    parts = parts_for(w, decoder=True)  # an objective of its own: left as it was
    before = parts.objective.mask_token.detach().clone()
    w.load_into(parts)
    assert torch.equal(parts.objective.mask_token, before)


def test_encoder_plus_decoder_needs_a_decoder(tmp_path: Path) -> None:
    path = save(checkpoint("v1", dec_width=None), tmp_path / "enc.pt")
    with pytest.raises(ValueError, match=r"fills='encoder\+decoder' but .*enc.pt has no decoder"):
        weights(path, fills="encoder+decoder")


def test_wrong_layout_names_missing_and_unexpected_keys(tmp_path: Path) -> None:
    ck = checkpoint("v2")
    del ck["encoder.blocks.1.attn.proj.weight"]
    ck["encoder.blocks.1.attn.extra"] = torch.zeros(3)
    ck["encoder.norm.bias"] = torch.zeros(65)
    path = save(ck, tmp_path / "bad.safetensors")
    with pytest.raises(ValueError) as err:
        weights(path, heads=4)
    msg = str(err.value)
    assert "bad.safetensors is not a Prithvi v2 checkpoint" in msg
    assert "missing: encoder.blocks.1.attn.proj.weight" in msg
    assert "unexpected key(s): encoder.blocks.1.attn.extra" in msg
    assert "encoder.norm.bias is (65,), expected (64,)" in msg


def test_a_forced_version_that_does_not_fit_is_an_error(tmp_path: Path) -> None:
    path = save(checkpoint("v2"), tmp_path / "v2.pt")
    with pytest.raises(ValueError, match=r"v2.pt is laid out as a Prithvi v2 checkpoint, not v1.*version = 'v2'"):
        weights(path, version="v1")
    with pytest.raises(ValueError, match=r"neither a Prithvi V1 .* nor a V2"):
        weights(save({"foo.weight": torch.zeros(2)}, tmp_path / "other.pt"))


def test_patch_size_must_match(tmp_path: Path) -> None:
    path = save(checkpoint("v1", patch=8, dec_width=None, width=32, depth=1), tmp_path / "p8.pt")
    with pytest.raises(ValueError, match="8-pixel patches but patch_size=16"):
        weights(path)
    assert weights(path, patch_size=8).meta["patch_size"] == 8


class _Payload:
    """A pickle that creates a file when loaded: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"patch_embed.proj.weight": torch.zeros(1), "payload": _Payload(marker)}, path)
    with pytest.raises(ValueError, match=r"refused to load .*evil.pt: it is a pickle that would build Python objects"):
        weights(path)
    assert not marker.exists()
    legacy = tmp_path / "evil_legacy.pt"  # the old non-zip pickle format goes through the same check
    legacy.write_bytes(pickle.dumps({"x": _Payload(marker)}, protocol=2))
    with pytest.raises(ValueError, match=r"refused to load .*evil_legacy\.pt"):
        weights(legacy)
    assert not marker.exists()
    # the payload is real: plain unpickling does create the file
    with open(legacy, "rb") as f:
        pickle.load(f).get("x").close()
    assert marker.exists()


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return save(checkpoint("v1", width=32, depth=1, dec_width=32), tmp_path / "small.pt")


def test_bands_in_another_order_need_band_map(small: Path) -> None:
    data = ("green", "blue", "red", "nir08", "swir16", "swir22")
    with pytest.raises(ValueError) as err:
        weights(small, data_bands=data)
    msg = str(err.value)
    assert str(list(data)) in msg and str(BANDS) in msg and "band_map" in msg and "different order" in msg


def test_a_data_band_the_weights_lack_is_an_error(small: Path) -> None:
    data = (*BANDS, "coastal")
    with pytest.raises(ValueError, match=r"the weights have no band \['coastal'\].*allow_new_bands"):
        weights(small, data_bands=data)


def test_a_weights_band_the_data_lacks_is_an_error_without_band_map(small: Path) -> None:
    data = ("blue", "green", "red", "nir08", "swir16")
    with pytest.raises(ValueError, match=r"missing: swir22"):
        weights(small, data_bands=data)
    w = weights(small, data_bands=data, band_map={})
    parts = parts_for(w, decoder=True)
    with pytest.warns(UserWarning, match=r"lacks the weights' band\(s\) \['swir22'\]"):
        w.load_into(parts)
    assert parts.embed.proj.weight.shape[1] == 5


def test_band_map_reorders_the_slices(small: Path) -> None:
    ck = torch.load(small, weights_only=True)
    data = ("swir22", "swir16", "B8A", "red", "green", "blue")  # B8A is nir08 by identity
    w = weights(small, data_bands=data, band_map={}, fills="encoder+decoder")
    parts = parts_for(w, decoder=True)
    w.load_into(parts)
    proj, pred = parts.embed.proj.weight, parts.objective.decoder_pred.weight
    for i, j in enumerate(reversed(range(6))):
        assert torch.equal(proj[:, i], ck["patch_embed.proj.weight"][:, j])
        assert torch.equal(pred.reshape(-1, 6, 32)[:, i], ck["decoder_pred.weight"].reshape(-1, 6, 32)[:, j])
    mean, std = w.input_stats()
    assert mean.tolist() == pytest.approx(list(reversed(PUBLISHED_STATS["v1"][0])))
    assert std.tolist() == pytest.approx(list(reversed(PUBLISHED_STATS["v1"][1])))
    renamed = weights(small, data_bands=("b", "g", "r", "n", "s1", "s2"),
                      band_map={"b": "blue", "g": "green", "r": "red", "n": "nir08", "s1": "swir16", "s2": "swir22"})
    assert renamed._sources == list(range(6))


def test_band_map_must_name_real_bands(small: Path) -> None:
    with pytest.raises(ValueError, match=r"band_map names data band\(s\) \['B99'\].*maps to \['lwir'\]"):
        weights(small, data_bands=BANDS, band_map={"B99": "lwir"})


def test_allow_new_bands_starts_them_from_the_mean_loudly(small: Path) -> None:
    ck = torch.load(small, weights_only=True)
    data = ("coastal", *BANDS)
    w = weights(small, data_bands=data, allow_new_bands=True)
    parts = parts_for(w)
    with pytest.warns(UserWarning, match=r"data band\(s\) \['coastal'\] are not in the weights"):
        w.load_into(parts)
    proj = parts.embed.proj.weight
    torch.testing.assert_close(proj[:, 0], ck["patch_embed.proj.weight"].mean(dim=1))
    assert torch.equal(proj[:, 1:], ck["patch_embed.proj.weight"])


def test_normalize_uses_the_published_statistics(small: Path) -> None:
    w = weights(small)
    mean, std = (torch.tensor(v).view(1, 6, 1, 1, 1) for v in PUBLISHED_STATS["v1"])
    chips = torch.rand(2, 6, 1, 8, 8)
    torch.testing.assert_close(w.normalize(chips, scale=10000.0), (chips * 10000 - mean) / std)
    assert w.normalize(chips[:, :, 0]).shape == (2, 6, 8, 8)
    with pytest.raises(ValueError, match="do not have the 6 bands"):
        w.normalize(torch.zeros(2, 5, 8, 8))


def test_v2_metadata_scales_load_or_are_dropped_with_a_warning(tmp_path: Path) -> None:
    path = save(checkpoint("v2", scales=True), tmp_path / "tl.pt")
    w = weights(path, heads=4, fills="encoder+decoder")
    with_scales = parts_for(w, decoder=True, scales=True)
    w.load_into(with_scales)
    assert with_scales.positional.time_scale.item() == pytest.approx(0.3)
    assert with_scales.objective.decoder_positional.location_scale.item() == pytest.approx(0.5)
    with pytest.warns(UserWarning, match="time / location encoding weights"):
        w.load_into(parts_for(w, decoder=True))


def test_a_backbone_of_other_sizes_is_refused(small: Path) -> None:
    w = weights(small)
    parts = parts_for(w)
    parts.backbone.eps = 1e-6
    with pytest.raises(ValueError, match=r"backbone does not match .*eps=1e-06 \(checkpoint: 1e-05\)"):
        w.load_into(parts)
    with pytest.raises(CheckpointError, match=r"embed.proj.weight \(patch_embed.proj.weight\) is \(32, 6, 1, 16, 16\)"):
        w.load_into(parts_for(w, channels=4))


def test_encoder_features_match_the_reference(tmp_path: Path) -> None:
    ck = checkpoint("v1", width=64, depth=2, dec_width=32, frames=2)
    w = weights(save(ck, tmp_path / "v1.pt"), heads=4)
    encoder = w.encoder()
    chips = torch.randn(2, 6, 2, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(encoder(chips), reference_features(ck, chips, heads=4), atol=1e-5, rtol=1e-5)


def test_the_stacks_own_parts_take_a_v2_tl_checkpoint(tmp_path: Path) -> None:
    from registry_gfm.backbones.specs import ViTConfig
    from registry_gfm.backbones.vit import build as build_vit
    from registry_gfm.objectives.mae import MAEObjective
    from registry_gfm.objectives.specs import MAEConfig
    from registry_gfm.positions.sincos import SinCos3D
    from registry_gfm.positions.specs import MetadataOptions
    from registry_gfm.tokenizers.patch_tokenizer import PatchEmbed

    ck = checkpoint("v2", scales=True, dec_width=32, dec_depth=2)
    w = weights(save(ck, tmp_path / "tl.safetensors"), heads=4, decoder_heads=4, fills="encoder+decoder")
    options = MetadataOptions(time_encoding=True, location_encoding=True)
    eps = w.layer_norm_eps  # composition wires it from the weights; parts built by hand take it from them
    backbone = build_vit(ViTConfig(embed_dim=64, depth=2, heads=4, layer_norm_eps=eps))
    parts = ModelParts(PatchEmbed(6, 64, 16), SinCos3D(64, options), backbone,
                       MAEObjective(MAEConfig(embed_dim=64, decoder_dim=32, decoder_depth=2, decoder_heads=4,
                                              layer_norm_eps=eps)))
    parts.objective.bind(parts)
    w.load_into(parts)
    assert parts.positional.time_scale.item() == pytest.approx(0.3)
    assert parts.objective.decoder_positional.location_scale.item() == pytest.approx(0.5)
    back = prithvi_state_dict(parts, "v2", ("encoder", "decoder"))
    assert set(back) == set(ck) - {"encoder.pos_embed", "decoder.decoder_pos_embed"}
    assert all(torch.equal(v, ck[k]) for k, v in back.items())


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers not installed")
def test_hf_vitmae_tables_match_transformers(tmp_path: Path) -> None:
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    cfg = ViTMAEConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       decoder_hidden_size=16, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
                       decoder_intermediate_size=32, image_size=32, patch_size=16, num_channels=6)
    torch.manual_seed(0)
    state = ViTMAEForPreTraining(cfg).state_dict()
    ours = HF_VITMAE_V5.convert(state, "ours")
    assert ours.unmatched == [] and ours.incomplete == {}
    assert tuple(ours.tensors["embed.proj.weight"].shape) == (32, 6, 1, 16, 16)
    assert tuple(ours.tensors["backbone.blocks.0.attn.qkv.weight"].shape) == (96, 32)
    fixed = {"vit.embeddings.position_embeddings", "decoder.decoder_pos_embed"}
    assert set(HF_VITMAE_V5.convert(ours.tensors, "theirs").tensors) == set(state) - fixed
    # the file naming (transformers 4) loads into transformers 5 as the same tensors
    files = HF_VITMAE.convert(ours.tensors, "theirs").tensors
    assert "vit.encoder.layer.1.attention.attention.value.weight" in files
    files.update({k: state[k] for k in fixed})
    cfg.save_pretrained(tmp_path)
    save_file({k: v.contiguous() for k, v in files.items()}, str(tmp_path / "model.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded, info = ViTMAEForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_tables_share_our_names() -> None:
    v1 = {r.ours for r in PRITHVI_V1.rules}
    assert v1 <= {r.ours for r in PRITHVI_V2.rules}
    assert v1 == {r.ours for r in HF_VITMAE.rules} == {r.ours for r in HF_VITMAE_V5.rules}


def test_a_pipeline_loads_prithvi_and_normalises_with_its_statistics(lsat7_store: Path, tmp_path: Path) -> None:
    """zarr-chips + patch 16 + sincos-3d + vit + mae, filled from a V1-layout file: the data takes the weights' mean/std."""
    from registry_core import compose

    ck = checkpoint("v1", width=64, depth=2, dec_width=32, dec_depth=1)
    path = save(ck, tmp_path / "prithvi.safetensors")
    pipe = compose({
        "data": {"use": "zarr-chips", "store": str(lsat7_store), "chip_size": 32, "bands": list(BANDS)},
        "tokenizer": {"use": "patch", "patch_size": 16},
        "positional": {"use": "sincos-3d"},
        "backbone": {"use": "vit", "embed_dim": 64, "depth": 2, "heads": 4},
        "objective": {"use": "mae", "decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 4},
        "weights": {"use": "prithvi", "path": str(path), "fills": "encoder+decoder", "heads": 4,
                    "decoder_heads": 4},
    }).build()
    assert pipe.slots["backbone"].config.layer_norm_eps == 1e-5 and pipe.slots["backbone"].wired["layer_norm_eps"] == "weights"
    assert pipe.parts.backbone.eps == pipe.parts.objective.decoder.eps == 1e-5  # wired from the weights
    torch.testing.assert_close(pipe.parts.embed.proj.weight.detach(), ck["patch_embed.proj.weight"])
    torch.testing.assert_close(pipe.parts.objective.mask_token.detach(), ck["mask_token"])
    mean, std = pipe.data._norm
    w = pipe.component("weights")
    expected_mean, expected_std = (v.double().numpy() * w.meta["stats_scale"] for v in w.input_stats())
    np.testing.assert_allclose(mean, expected_mean)
    np.testing.assert_allclose(std, expected_std)
    from torch.utils.data import default_collate

    batch = default_collate([pipe.data.dataset("train")[i] for i in range(2)])
    loss, _ = pipe.model(batch)
    assert torch.isfinite(loss)
