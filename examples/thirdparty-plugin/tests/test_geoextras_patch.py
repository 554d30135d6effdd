"""The `patch` replacement: NDVI, index channels from physical values, patch norm, and a real pipeline build."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from registry_core import Pipeline, Registry
from registry_geoextras.patch import GeoPatchEmbed
from registry_gfm import PatchEmbed

PACKAGE = Path(__file__).resolve().parents[1]


def test_ndvi_values(registry: Registry) -> None:
    ndvi = registry.build("spectral_index", "ndvi")
    red_nir = torch.tensor([[0.1, 0.5], [0.5, 0.1], [0.3, 0.3], [0.0, 0.0]])
    torch.testing.assert_close(ndvi(red_nir), torch.tensor([4 / 6, -4 / 6, 0.0, 0.0]))


def embedding(registry: Registry, *, indices: list[str], patch_norm: bool, bands: list[str]) -> GeoPatchEmbed:
    tok = registry.build("tokenizer", "patch", patch_size=2, bands=bands, indices=indices, patch_norm=patch_norm)
    tok.attach_normalization(lambda: {"bands": bands, "mean": [10.0] * len(bands), "std": [2.0] * len(bands)})
    torch.manual_seed(0)
    embed: GeoPatchEmbed = tok.embedding(8)
    return embed


def test_the_index_channel_is_ndvi_of_the_physical_values(registry: Registry) -> None:
    """With every weight zero but the NDVI channel's, each token is the NDVI of its first pixel."""
    embed = embedding(registry, indices=["ndvi"], patch_norm=False, bands=["red", "B8A", "swir16"])  # B8A is nir08
    assert embed.channels == 3 and embed.proj.in_channels == 4
    with torch.no_grad():
        embed.proj.weight.zero_()
        embed.proj.bias.zero_()
        embed.proj.weight[0, 3, 0, 0, 0] = 1.0
    chips = torch.randn(2, 3, 1, 4, 4)  # standardised: physical = 10 + 2 * chips
    red, nir = 10 + 2 * chips[:, 0, 0, ::2, ::2], 10 + 2 * chips[:, 1, 0, ::2, ::2]
    expected = ((nir - red) / (nir + red)).flatten(1)  # (B, 4 patches), row-major
    torch.testing.assert_close(embed(chips)[..., 0], expected)


@pytest.mark.parametrize("indices", [[], ["ndvi"]])
def test_patch_vectors_and_chips_embed_alike(registry: Registry, indices: list[str]) -> None:
    bands = ["blue", "green", "red", "nir08"]
    embed = embedding(registry, indices=indices, patch_norm=True, bands=bands)
    chips = torch.randn(2, 4, 1, 4, 6)
    # MAE's patchify: (B, C, T, H, W) -> (B, N, p·q·C), tokens in (t, h, w) order, each (t, p, q, c)
    vectors = chips.reshape(2, 4, 1, 1, 2, 2, 3, 2).permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(2, 6, 16)
    torch.testing.assert_close(embed(vectors), embed(chips), rtol=1e-5, atol=1e-5)
    out = embed(chips)
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 6), atol=1e-5, rtol=0)  # the LayerNorm


def test_without_options_it_is_the_bundled_embedding(registry: Registry) -> None:
    embed = embedding(registry, indices=[], patch_norm=False, bands=["red", "nir08"])
    bundled = PatchEmbed(2, 8, 2)
    bundled.load_state_dict(embed.state_dict())  # the same parameter names and shapes
    chips = torch.randn(1, 2, 1, 4, 4)
    torch.testing.assert_close(embed(chips), bundled(chips))


def test_a_missing_band_or_missing_statistics_is_an_error(registry: Registry) -> None:
    with pytest.raises(ValueError, match=r"ndvi.*needs one of the bands \['nir', 'nir08'\]"):
        embedding(registry, indices=["ndvi"], patch_norm=True, bands=["blue", "red"])
    tok = registry.build("tokenizer", "patch", patch_size=2, bands=["red", "nir08"], indices=["ndvi"])
    with pytest.raises(ValueError, match="needs the data's per-band mean / std"):
        tok.embedding(8)


def test_the_pipeline_builds_with_the_datacube_statistics(registry: Registry, lsat7_store: Path) -> None:
    p = Pipeline.from_toml(PACKAGE / "pipeline.toml", registry, overrides=[f"data.store={lsat7_store}"])
    assert p.slots["tokenizer"].spec.id == "geoextras:patch"
    assert p.slots["positional"].spec.id == "geoextras:rope-2d"
    p.build()
    parts = p.parts
    norm = p.component("data").normalization()
    torch.testing.assert_close(parts.embed.mean, torch.tensor(norm["mean"], dtype=torch.float32))
    assert parts.embed.channels == 6 and parts.embed.proj.in_channels == 7
    assert parts.objective.decoder_pred.out_features == 4 * 4 * 6  # the decoder predicts the bands only
    batch = torch.utils.data.default_collate([p.component("data").dataset("train")[i] for i in range(4)])
    loss, metrics = parts.objective(parts, batch)
    assert torch.isfinite(loss) and metrics["masked_tokens"] == 4 * 12  # 16 patches, 4 kept
