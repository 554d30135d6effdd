"""Config schemas and specs of the imagery objectives ``mae`` and ``contrastive`` (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, option

_EMBED = "encoder width; None: wired from the backbone's embed_dim when composed"


@dataclass
class MAEConfig:
    """Masked-autoencoder pretraining: drop ``mask_ratio`` of the patches, reconstruct their pixels."""

    embed_dim: int | None = option(None, help=_EMBED, min=1, wired="embed_dim")
    mask_ratio: float = option(0.75, help="share of each sample's tokens hidden from the encoder", min=0.0, max=0.99)
    decoder_dim: int = option(512, help="width of the light decoder", min=4)
    decoder_depth: int = option(8, help="transformer blocks of the decoder", min=1)
    decoder_heads: int = option(16, help="attention heads of the decoder", min=1)
    mlp_ratio: float = option(4.0, help="decoder MLP width as a multiple of decoder_dim", min=0.0)
    norm_pix_loss: bool = option(False, help="normalise each target patch by its own mean and variance (MAE's "
                                 "norm_pix_loss), over its valid pixels")
    layer_norm_eps: float = option(1e-6, help="LayerNorm epsilon of the decoder", min=0.0)
    min_valid: float = option(0.0, help="a token whose valid-pixel fraction is at most this is never chosen as a "
                              "reconstruction target (0: any token with a usable pixel)", min=0.0, max=1.0)

    def __post_init__(self) -> None:
        if self.decoder_dim % self.decoder_heads:
            raise ValueError(f"decoder_dim {self.decoder_dim} must be divisible by decoder_heads {self.decoder_heads}")


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="objective",
        name="mae",
        target="registry_gfm.objectives.mae:build",
        summary="Cloud-aware MAE: random per-sample masking (argsort of noise), light decoder, pixel loss on "
        "masked patches counting only valid (cloud-free, non-NaN) pixels.",
        modality="imagery",
        tags=("gfm", "pretraining", "mae", "masked-image-modeling"),
        config=MAEConfig,
        requires={"causal": False, "tokens": "continuous", "supports_masking": True, "embed_dim": None},
    ),
]
