"""Cards of the published Prithvi-EO models: the ``prithvi`` loader preset to each hub repo of
``ibm-nasa-geospatial``, with what the model expects as data (no heavy imports, no network).

Repos, file names and sizes are those of TerraTorch's backbone registry (``prithvi_vit.py``:
``pretrained_weights`` and ``prithvi_cfgs``); bands, mean and std those of each repo's config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry_core import Card, ComponentSpec
from registry_gfm.weights.specs import PUBLISHED_BANDS, PUBLISHED_LAYER_NORM_EPS, PUBLISHED_STATS, PrithviConfig

ORG = "ibm-nasa-geospatial"


@dataclass(frozen=True)
class _Variant:
    repo: str
    file: str
    embed_dim: int
    depth: int
    heads: int
    patch: int
    frames: int
    params: int
    version: str = "v2"
    coords: tuple[str, ...] = ()


#: ``params``: the learned tensors of each MAE checkpoint (encoder and decoder; not the fixed sin-cos tables), counted
#: on our model of the card's architecture in Prithvi's naming (plugins/gfm/tests/model/test_prithvi_cards.py
#: counts them again).
_TL = ("time", "location")
VARIANTS = (
    _Variant("Prithvi-EO-1.0-100M", "Prithvi_EO_V1_100M.pt", 768, 12, 12, 16, 3, 112_639_488, version="v1"),
    _Variant("Prithvi-EO-2.0-tiny-TL", "Prithvi_EO_V2_tiny_TL.pt", 192, 12, 3, 16, 1, 31_741_444, coords=_TL),
    _Variant("Prithvi-EO-2.0-100M-TL", "Prithvi_EO_V2_100M_TL.pt", 768, 12, 12, 16, 4, 112_639_492, coords=_TL),
    _Variant("Prithvi-EO-2.0-300M", "Prithvi_EO_V2_300M.pt", 1024, 24, 16, 16, 4, 330_419_712),
    _Variant("Prithvi-EO-2.0-300M-TL", "Prithvi_EO_V2_300M_TL.pt", 1024, 24, 16, 16, 4, 330_419_716, coords=_TL),
    _Variant("Prithvi-EO-2.0-600M", "Prithvi_EO_V2_600M.pt", 1280, 32, 16, 14, 4, 657_668_248),
    _Variant("Prithvi-EO-2.0-600M-TL", "Prithvi_EO_V2_600M_TL.pt", 1280, 32, 16, 14, 4, 657_668_252, coords=_TL),
)


def _preprocessing(v: _Variant) -> dict[str, Any]:
    mean, std = PUBLISHED_STATS[v.version]
    return {"bands": list(PUBLISHED_BANDS), "hls_bands": ["B02", "B03", "B04", "B8A/B05", "B11/B06", "B12/B07"],
            "mean": list(mean), "std": list(std), "units": "HLS surface reflectance x 10000", "patch_size": v.patch,
            "tubelet": 1, "frames": v.frames, "img_size": 224, "layer_norm_eps": PUBLISHED_LAYER_NORM_EPS[v.version],
            "embed_dim": v.embed_dim, "depth": v.depth, "heads": v.heads, "decoder": [512, 8, 16],
            "encodings": list(v.coords) or ["none"]}


def card_spec(v: _Variant) -> ComponentSpec:
    tl = " with time and location encodings" if v.coords else ""
    return ComponentSpec(
        kind="weights",
        name=v.repo.lower(),
        target="registry_gfm.weights.prithvi:build",
        summary=f"{v.repo}: Prithvi-EO {v.version.upper()} MAE, ViT {v.embed_dim}x{v.depth}, {v.patch}-pixel patches, "
        f"{v.frames} frame{'s' if v.frames > 1 else ''}{tl}; HLS 6 bands (NASA/IBM).",
        modality="imagery",
        tags=("prithvi", "mae", "vit", "hls"),
        config=PrithviConfig,
        provides={"patch_size": None, "bands": None, "layer_norm_eps": None},  # the loader's ports, set by the card
        card=Card(
            repo=f"{ORG}/{v.repo}",
            files=(v.file,),
            licence="apache-2.0",
            params=v.params,
            source=f"https://huggingface.co/{ORG}/{v.repo}",
            preprocessing=_preprocessing(v),
            options={"version": v.version, "patch_size": v.patch, "heads": v.heads},
        ),
    )


SPECS: list[ComponentSpec] = [card_spec(v) for v in VARIANTS]
