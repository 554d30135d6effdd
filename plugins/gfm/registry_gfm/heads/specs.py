"""Config schemas and specs of the finetuning heads ``classification`` and ``segmentation`` (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, option

_CLASSES = "classes to predict; None: wired from the data source's num_classes"
_EMBED = "encoder width; None: wired from the backbone's embed_dim when composed"


@dataclass
class ClassificationHeadConfig:
    """One label per chip: pooled encoder features -> linear layer, or a small MLP."""

    num_classes: int | None = option(None, help=_CLASSES, min=1, wired="num_classes")
    embed_dim: int | None = option(None, help=_EMBED, min=1, wired="embed_dim")
    pool: str = option("auto", help="chip feature: 'cls' (the backbone's cls token), 'mean' (mean of the patch "
                       "tokens), 'auto' (cls when the backbone has one, else mean)", choices=("auto", "cls", "mean"))
    hidden_dim: int = option(0, help="hidden width of a one-hidden-layer MLP (GELU); 0: a linear head", min=0)
    dropout: float = option(0.0, help="dropout before the output layer", min=0.0, max=0.99)


#: How the segmentation head turns the token grid back into pixels.
DECODERS = ("progressive", "fpn")


@dataclass
class SegmentationHeadConfig:
    """A class per pixel: the patch-token grid upsampled back to the chip's pixels."""

    num_classes: int | None = option(None, help=_CLASSES, min=1, wired="num_classes")
    embed_dim: int | None = option(None, help=_EMBED, min=1, wired="embed_dim")
    decoder: str = option("progressive", help="'progressive': the last layer's token grid through 2x transposed-"
                          "conv stages up to pixels (SETR-PUP); 'fpn': a light UPerNet-style decoder, a feature "
                          "pyramid (4x, 2x, 1x, 0.5x the patch grid) over four encoder layers fused top-down",
                          choices=DECODERS)
    layers: list[int] | None = option(None, help="encoder blocks the head reads (negative from the end); None: "
                                      "the last (progressive) or four evenly spaced ending at the last (fpn)")
    channels: int = option(64, help="width of the decoder's feature maps", min=1)
    dropout: float = option(0.1, help="dropout before the per-pixel classifier", min=0.0, max=0.99)

    def __post_init__(self) -> None:
        if self.layers is not None and self.decoder == "fpn" and len(self.layers) != 4:
            raise ValueError(f"decoder 'fpn' reads 4 encoder layers (one per pyramid level); 'layers' gives "
                             f"{len(self.layers)}: {self.layers}")
        if self.layers is not None and not self.layers:
            raise ValueError("option 'layers' is empty; name at least one encoder block, or leave it unset")


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="head",
        name="classification",
        target="registry_gfm.heads.classification:build",
        summary="Chip classification: cls or mean-pooled ViT features -> linear layer or a small MLP.",
        modality="imagery",
        tags=("gfm", "finetuning", "classification"),
        config=ClassificationHeadConfig,
        provides={"task": "classification"},
        requires={"embed_dim": None},
    ),
    ComponentSpec(
        kind="head",
        name="segmentation",
        target="registry_gfm.heads.segmentation:build",
        summary="Semantic segmentation: ViT token grid -> pixels by progressive upsampling or a light "
        "UPerNet-style feature pyramid over four encoder layers; any chip that is a multiple of the patch.",
        modality="imagery",
        tags=("gfm", "finetuning", "segmentation", "dense"),
        config=SegmentationHeadConfig,
        provides={"task": "segmentation"},
        requires={"embed_dim": None},
    ),
]
