"""Config schemas and specs of the imagery evaluators ``reconstruction`` and ``linear-probe`` (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, option


@dataclass
class ReconstructionConfig:
    """Masked-patch reconstruction quality of an MAE-style objective: MSE and PSNR, optionally a PNG grid."""

    batch_size: int = option(16, help="Samples per forward pass.", min=1)
    max_batches: int | None = option(None, help="Stop after this many batches (None: the whole split).", min=1)
    seed: int = option(0, help="Seed of the masking noise: sample i of a split hides the same patches in every run, "
                       "whatever the batch size.")
    out: str | None = option(None, help="Write a PNG grid (input, masked input, reconstruction, error) of the first "
                             "samples to this path; None: no file.")
    samples: int = option(4, help="Rows of the PNG grid (the split's first samples).", min=1)
    frame: int = option(0, help="Frame of multi-temporal chips shown in the PNG grid.", min=0)


@dataclass
class LinearProbeConfig:
    """MAE's linear probe on frozen encoder features: fit on the train split, score on the evaluated split."""

    pool: str = option("cls", help="Feature of a chip: the cls token ('cls', MAE's protocol) or the mean of the "
                       "patch tokens ('mean', for encoders without a cls token).", choices=("cls", "mean"))
    epochs: int = option(90, help="Probe training epochs over the train features.", min=1)
    lr: float = option(0.1, help="Peak learning rate of the probe's SGD (momentum 0.9, cosine decay).", min=0.0)
    batch_size: int = option(256, help="Probe training batch size.", min=2)
    feature_batch_size: int = option(32, help="Chips per encoder forward pass when computing features.", min=1)
    seed: int = option(0, help="Seed of the probe's initialisation and shuffling.")
    max_samples: int | None = option(None, help="Use at most this many samples of each split (the first ones; "
                                     "None: all).", min=1)
    classes: int | None = option(None, help="Number of classes; None: one more than the largest label seen.", min=2)


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="evaluator",
        name="reconstruction",
        target="registry_gfm.evaluators.reconstruction:build",
        summary="MSE and PSNR of the reconstruction of masked patches (valid pixels only, fixed mask seed); "
        "optional PNG grid of input, masked input, reconstruction and error.",
        modality="imagery",
        tags=("gfm", "mae", "reconstruction"),
        config=ReconstructionConfig,
        requires={"tokens": "continuous"},
    ),
    ComponentSpec(
        kind="evaluator",
        name="linear-probe",
        target="registry_gfm.evaluators.linear_probe:build",
        summary="Linear probe (BatchNorm + linear, SGD) on frozen encoder features of labelled chips: accuracy "
        "and macro-F1 on the evaluated split, trained on the train split.",
        modality="imagery",
        tags=("gfm", "probe", "classification"),
        config=LinearProbeConfig,
        requires={"tokens": "continuous"},
    ),
]
