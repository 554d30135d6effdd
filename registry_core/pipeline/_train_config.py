"""The ``[train]`` table of a pipeline: optimizer, schedule, batch, precision and checkpoint settings.

Stdlib only, so composition validates it before torch is imported (``registry_core.training`` reads it).
"""

from __future__ import annotations

from dataclasses import dataclass

from registry_core._errors import ConfigError, ConfigIssue
from registry_core._spec import option

__all__ = ["NO_DECAY_CHOICES", "TrainConfig"]

#: Parameter families that ``no_decay`` may exempt from weight decay.
NO_DECAY_CHOICES = ("norms", "biases", "embeddings")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: AdamW with decay groups, linear warm-up then cosine, accumulation, checkpoints."""

    steps: int = option(1000, help="optimizer steps to run in total", min=1)
    batch_size: int = option(32, help="global batch: samples per optimizer step, summed over ranks", min=1)
    micro_batch_size: int | None = option(
        None,
        help="samples per rank per forward pass; accumulation steps = batch_size / (micro_batch_size * ranks); "
        "None: batch_size / ranks (no accumulation)",
        min=1,
    )
    lr: float = option(3e-4, help="peak learning rate, reached at the end of warm-up", min=0.0)
    min_lr: float = option(0.0, help="learning rate at the end of the cosine decay", min=0.0)
    warmup_steps: int = option(
        0, help="steps of linear warm-up from lr/warmup_steps to lr (a run shorter than this ends in warm-up)", min=0
    )
    weight_decay: float = option(0.1, help="AdamW decoupled weight decay of the decayed group", min=0.0)
    betas: tuple[float, float] = option((0.9, 0.95), help="AdamW (beta1, beta2), each in [0, 1)")
    eps: float = option(1e-8, help="AdamW epsilon", min=0.0)
    grad_clip: float | None = option(1.0, help="clip the global gradient norm to this; None or 0 disables", min=0.0)
    seed: int = option(0, help="seed of data order and of the random streams (each rank adds its rank)", min=0)
    precision: str = option(
        "fp32", help="fp32, or bf16 autocast where the device supports it", choices=("fp32", "bf16")
    )
    compile: bool = option(False, help="wrap the model in torch.compile")
    checkpoint_every: int = option(
        1000, help="write out_dir/checkpoints/last.pt every N steps (0: only at the end)", min=0
    )
    eval_every: int = option(0, help="evaluate on the validation data every N steps (0: only at the end)", min=0)
    log_every: int = option(10, help="append to metrics.jsonl and print a log line every N steps", min=1)
    num_workers: int = option(0, help="DataLoader worker processes per rank (0: load in the training process)", min=0)
    threads: int | None = option(None, help="torch intra-op threads per rank; None: OMP_NUM_THREADS when set, else "
                                 "the usable cores (CPU affinity, cgroup quota) shared by the ranks on this machine, "
                                 "less one per rank for data loading when each has two or more", min=1)
    no_decay: tuple[str, ...] = option(
        ("norms", "biases"), help="parameter families without weight decay: any of norms, biases, embeddings"
    )
    device: str = option("auto", help="auto (cuda when available), cpu or cuda", choices=("auto", "cpu", "cuda"))
    peak_tflops: float | None = option(
        None, help="the accelerator's peak TFLOP/s for MFU; None: looked up for known GPUs, else no MFU", min=0.0
    )

    def __post_init__(self) -> None:
        # Cross-field checks; composition reports a ValueError from here as an issue of the [train] slot.
        problems = []
        if self.micro_batch_size is not None and self.batch_size % self.micro_batch_size:
            problems.append(
                f"batch_size {self.batch_size} is not a multiple of micro_batch_size {self.micro_batch_size}"
            )
        if self.min_lr > self.lr:
            problems.append(f"min_lr {self.min_lr} is above lr {self.lr}; expected min_lr <= lr")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            problems.append(f"betas {self.betas} must be two numbers in [0, 1)")
        unknown = [n for n in self.no_decay if n not in NO_DECAY_CHOICES]
        if unknown:
            problems.append(
                f"no_decay has {', '.join(map(repr, unknown))}; expected any of {', '.join(NO_DECAY_CHOICES)}"
            )
        if problems:
            raise ValueError("; ".join(problems))

    def micro_batch(self, world_size: int) -> int:
        """Samples per rank per forward pass on ``world_size`` ranks."""
        return self.micro_batch_size if self.micro_batch_size is not None else self.batch_size // max(world_size, 1)

    def accumulation_steps(self, world_size: int, slot: str = "train") -> int:
        """Micro-steps per optimizer step on ``world_size`` ranks; ConfigError when the batch does not split."""
        micro = self.micro_batch(world_size)
        per_step = micro * world_size
        if micro < 1 or self.batch_size % per_step:
            what = f"micro_batch_size {micro} x {world_size} ranks" if self.micro_batch_size else f"{world_size} ranks"
            raise ConfigError(
                [ConfigIssue(slot, "batch_size", f"batch_size {self.batch_size} does not split evenly over {what}")]
            )
        return self.batch_size // per_step
