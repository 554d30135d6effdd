"""Config schemas and specs of the imagery objectives ``mae``, ``contrastive`` and ``finetune`` (no heavy imports)."""

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
    layer_norm_eps: float | None = option(None, help="LayerNorm epsilon of the decoder; None: wired from the "
                                          "weights (Prithvi: 1e-5), else 1e-6 (MAE)", min=0.0, wired="layer_norm_eps")
    min_valid: float = option(0.0, help="a token whose valid-pixel fraction is at most this is never chosen as a "
                              "reconstruction target (0: any token with a usable pixel)", min=0.0, max=1.0)

    def __post_init__(self) -> None:
        if self.decoder_dim % self.decoder_heads:
            raise ValueError(f"decoder_dim {self.decoder_dim} must be divisible by decoder_heads {self.decoder_heads}")


#: How each view's tokens become one vector.
POOLS = ("auto", "cls", "mean")
#: Where the two views come from.
VIEWS = ("auto", "dates", "augmentations")
#: The projection head's layout.
HEADS = ("bn-relu", "gelu")


@dataclass
class ContrastiveConfig:
    """InfoNCE between two views of one place (SimCLR's NT-Xent over the 2B x 2B similarities)."""

    embed_dim: int | None = option(None, help=_EMBED, min=1, wired="embed_dim")
    temperature: float = option(0.1, help="divides the cosine similarities (> 0)", min=0.0)
    projection_dim: int = option(128, help="width of the projection head's output, where the loss is taken", min=1)
    hidden_dim: int | None = option(None, help="hidden width of the projection head; None: the encoder width", min=1)
    head: str = option("bn-relu", help="projection head: 'bn-relu' (Linear-BatchNorm-ReLU-Linear, SimCLR) or "
                       "'gelu' (Linear-GELU-Linear)", choices=HEADS)
    pool: str = option("auto", help="view vector: 'cls' (the backbone's first prefix token), 'mean' (mean of the "
                       "patch tokens), 'auto' (cls when the backbone has one, else mean)", choices=POOLS)
    views: str = option("auto", help="'dates' (two different time slices of one chip), 'augmentations' (two random "
                        "crops/flips/rotations of one chip), 'auto' (dates when chips have >= 2 time slices)",
                        choices=VIEWS)
    crop_min: float = option(0.5, help="smallest crop side as a share of the chip's shorter side (crops are square, "
                             "in whole patches, not resized; 1: the largest square)", min=0.0, max=1.0)
    flips: bool = option(True, help="augmentations flip chips horizontally at random")
    rotations: bool = option(True, help="augmentations rotate chips by a random multiple of 90 degrees")
    min_valid: float = option(0.0, help="a view whose valid-pixel fraction is at most this is left out, and its "
                              "sample with it (0: only views with no usable pixel)", min=0.0, max=1.0)

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


@dataclass
class FinetuneConfig:
    """Supervised finetuning of a pretrained encoder with a ``[head]``: cross-entropy with ignore_index."""

    task: str | None = option(None, help="'segmentation' or 'classification'; None: wired from the data source "
                              "(the `task` port) or the head", choices=("segmentation", "classification"),
                              wired="task")
    num_classes: int | None = option(None, help="classes; None: wired from the data source's num_classes", min=1,
                                     wired="num_classes")
    ignore_index: int | None = option(None, help="label skipped by the loss and the metrics; None: wired from the "
                                      "data source (255 without one)", wired="ignore_index")
    class_weights: list[float] | None = option(None, help="a loss weight per class (e.g. inverse frequency for rare "
                                               "classes); None: every class weighs 1")
    label_smoothing: float = option(0.0, help="cross-entropy label smoothing", min=0.0, max=0.99)
    freeze_encoder: bool = option(True, help="train only the head, the encoder (embedding, positions, backbone) "
                                  "stays as loaded: the default for small labelled sets")
    layer_decay: float = option(1.0, help="layer-wise learning-rate decay of an unfrozen encoder (BEiT / MAE "
                                "finetuning): block i of L trains at lr * layer_decay^(L - i), the patch embedding "
                                "at lr * layer_decay^(L + 1); 1: every layer at lr", min=0.0, max=1.0)

    def __post_init__(self) -> None:
        if self.class_weights is not None:
            if self.num_classes is not None and len(self.class_weights) != self.num_classes:
                raise ValueError(f"class_weights gives {len(self.class_weights)} weights for num_classes="
                                 f"{self.num_classes}; expected one per class")
            if any(w < 0 for w in self.class_weights) or not any(w > 0 for w in self.class_weights):
                raise ValueError(f"class_weights must be >= 0 with at least one > 0, got {self.class_weights}")
        if not self.layer_decay > 0:
            raise ValueError(f"layer_decay must be in (0, 1], got {self.layer_decay}")


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
    ComponentSpec(
        kind="objective",
        name="contrastive",
        target="registry_gfm.objectives.contrastive:build",
        summary="SimCLR-style InfoNCE between two views of one place: two dates of a multi-frame chip, else two "
        "random crops/flips/rotations; pooled encoder output, projection head, views with no valid pixel left out.",
        modality="imagery",
        tags=("gfm", "pretraining", "contrastive", "simclr", "infonce"),
        config=ContrastiveConfig,
        requires={"causal": False, "tokens": "continuous", "embed_dim": None},
    ),
    ComponentSpec(
        kind="objective",
        name="finetune",
        target="registry_gfm.objectives.finetune:build",
        summary="Supervised finetuning through a [head] (segmentation or classification): cross-entropy with "
        "ignore_index and class weights, frozen encoder or layer-wise learning-rate decay.",
        modality="imagery",
        tags=("gfm", "finetuning", "segmentation", "classification"),
        config=FinetuneConfig,
        requires={"tokens": "continuous", "causal": False},
    ),
]
