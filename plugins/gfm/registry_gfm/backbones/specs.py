"""Config schema and spec of the imagery backbone ``vit`` (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, option
from registry_core.names import ACTIVATIONS

#: LayerNorm epsilon of the imagery ViT and MAE decoder when no weights set it (MAE, timm's ViT).
DEFAULT_LAYER_NORM_EPS = 1e-6


@dataclass
class ViTConfig:
    """A bidirectional pre-LN ViT encoder over the shared ``registry_core.nn`` blocks (ViT-B/16 defaults)."""

    embed_dim: int = option(768, help="model width D (divisible by heads)", min=1)
    depth: int = option(12, help="number of transformer blocks", min=1)
    heads: int = option(12, help="attention heads per block", min=1)
    mlp_ratio: float = option(4.0, help="MLP hidden width as a multiple of embed_dim", min=0.0)
    cls_token: bool = option(True, help="prepend a learned cls token (first in the output, no position)")
    dropout: float = option(0.0, help="dropout on embeddings, attention weights and residual branches",
                            min=0.0, max=1.0)
    activation: str = option("gelu", help=f"MLP activation, one of {', '.join(map(repr, ACTIVATIONS))}",
                             choices=ACTIVATIONS)
    layer_norm_eps: float | None = option(None, help="LayerNorm epsilon; None: wired from the weights (Prithvi: "
                                          "1e-5, its code's nn.LayerNorm), else 1e-6 (MAE, timm's ViT)", min=0.0,
                                          wired="layer_norm_eps")
    init_std: float = option(0.02, help="std of the normal init of linear layers and the cls token", min=0.0)

    def __post_init__(self) -> None:
        if self.embed_dim % self.heads:
            raise ValueError(f"embed_dim {self.embed_dim} must be divisible by heads {self.heads}")


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
