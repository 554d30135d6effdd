"""Config schema and spec of the imagery backbone ``vit`` (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, TransformerOptions, option

#: LayerNorm epsilon of the imagery ViT and MAE decoder when no weights set it (MAE, timm's ViT).
DEFAULT_LAYER_NORM_EPS = 1e-6


@dataclass
class ViTConfig(TransformerOptions):
    """A bidirectional pre-LN ViT encoder over the shared ``registry_core.nn`` blocks (ViT-B/16 defaults)."""

    layer_norm_eps: float | None = option(None, help="LayerNorm epsilon; None: wired from the weights (Prithvi: "
                                          "1e-5, its code's nn.LayerNorm), else 1e-6 (MAE, timm's ViT)", min=0.0,
                                          wired="layer_norm_eps")
    cls_token: bool = option(True, help="prepend a learned cls token (first in the output, no position)")


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="backbone",
        name="vit",
        target="registry_gfm.backbones.vit:build",
        summary="Bidirectional ViT encoder (pre-LN, SDPA), optional cls token, any patch grid; drops masked "
        "tokens before the blocks; features (B, 1+N, D), cls first.",
        modality="imagery",
        tags=("gfm", "encoder", "bidirectional", "transformer", "vit"),
        config=ViTConfig,
        provides={"embed_dim": None, "heads": None, "causal": False, "position_modes": ["additive", "rotary"],
                  "supports_masking": True},
        requires={"grid": [2, 3]},
    ),
]
