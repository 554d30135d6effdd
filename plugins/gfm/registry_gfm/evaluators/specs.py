"""Config schemas and specs of the imagery evaluators (no heavy imports)."""

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


@dataclass
class TaskMetricsConfig:
    """Scores of a finetuned pipeline on labelled chips: overall accuracy, per-class IoU, mIoU, macro-F1."""

    batch_size: int = option(32, help="Samples per forward pass.", min=1)
    max_batches: int | None = option(None, help="Stop after this many batches (None: the whole split).", min=1)
    out: str | None = option("confusion", help="Save the confusion matrix as <out>.json and <out>.png (relative: "
                             "in the run's folder); None: no files.")


@dataclass
class BaselinesConfig:
    """The finetuned pipeline next to two baselines on the same split: a random-init encoder, a random forest."""

    random_init: bool = option(True, help="Train the same pipeline without its [weights] (a randomly initialised "
                               "encoder, same head, same steps) into <run>/baseline-random-init and score it.")
    random_forest: bool = option(True, help="Fit a per-pixel random forest (scikit-learn) on the bands of the "
                                 "train split's chips and score it on the same chips as the pipeline.")
    trees: int = option(100, help="Trees of the random forest.", min=1)
    train_pixels: int = option(30000, help="Labelled train pixels the forest is fitted on (drawn evenly from the "
                               "train chips).", min=100)
    train_chips: int = option(512, help="Train chips the forest's pixels are drawn from (the split's first).", min=1)
    batch_size: int = option(32, help="Samples per forward pass when scoring.", min=1)
    seed: int = option(0, help="Seed of the forest and of its pixel draw.")
    out: str | None = option("baselines.json", help="Write the side-by-side scores here (relative: in the run's "
                             "folder); None: no file.")


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
    ComponentSpec(
        kind="evaluator",
        name="task-metrics",
        target="registry_gfm.evaluators.task_metrics:build",
        summary="Overall accuracy, per-class IoU and F1, mIoU and macro-F1 of a finetuned pipeline (pixels or "
        "chips); the confusion matrix saved as JSON and PNG.",
        modality="imagery",
        tags=("gfm", "segmentation", "classification", "miou"),
        config=TaskMetricsConfig,
    ),
    ComponentSpec(
        kind="evaluator",
        name="baselines",
        target="registry_gfm.evaluators.baselines:build",
        summary="mIoU of the finetuned pipeline side by side with the same head on a randomly initialised "
        "encoder and a per-pixel random forest (scikit-learn) on the same spatial split.",
        modality="imagery",
        tags=("gfm", "segmentation", "baseline", "random-forest"),
        config=BaselinesConfig,
    ),
]
