"""A tiny regression task for the trainer tests, and a command line that trains it (for subprocess/torchrun).

Run as ``python trainer_tiny.py OUT [--steps N ...]``; prints the TrainResult as one JSON line on rank 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from registry_core.pipeline._train_config import TrainConfig

FEATURES = 8


class TinyRegression(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """``n`` samples ``{"x": (8,), "y": (1,)}`` with y a fixed linear function of x plus noise.

    ``poison``: an index whose features are inf, so the loss of any batch holding it is NaN.
    ``stall_after``: after serving this many samples, block (so a test can kill the process mid-run).
    """

    def __init__(self, n: int = 64, seed: int = 1234, poison: int | None = None, stall_after: int | None = None):
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, FEATURES, generator=gen)
        w = torch.randn(FEATURES, 1, generator=gen)
        self.y = self.x @ w + 0.1 * torch.randn(n, 1, generator=gen)
        if poison is not None:
            self.x[poison] = float("inf")
        self.stall_after = stall_after
        self.served = 0

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.stall_after is not None and self.served >= self.stall_after:
            time.sleep(3600)  # the test kills us here with SIGKILL
        self.served += 1
        return {"x": self.x[index], "y": self.y[index]}


class TinyModel(nn.Module):
    """MLP with a norm, biases and dropout; returns (mse loss, metrics) like a pipeline objective."""

    tokens_per_sample = 4
    flops_per_token = 1000.0

    def __init__(self, hidden: int = 16, dropout: float = 0.1) -> None:
        super().__init__()
        self.inp = nn.Linear(FEATURES, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h = self.drop(torch.nn.functional.gelu(self.norm(self.inp(batch["x"]))))  # (B, hidden)
        pred = self.out(h)  # (B, 1)
        loss = torch.nn.functional.mse_loss(pred, batch["y"])
        return loss, {"mae": (pred - batch["y"]).abs().mean().detach()}


class CountingModel(TinyModel):
    """TinyModel that also reports counts, as an LM reports its tokens: ``rows`` (samples) and ``kept``
    (rows with ``y > 0``), declared as ``count_metrics``."""

    count_metrics = ("rows", "kept")

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, metrics = super().forward(batch)
        kept = (batch["y"][:, 0] > 0).float().sum()
        return loss, {**metrics, "rows": torch.tensor(float(len(batch["y"]))), "kept": kept}


class WeightedModel(TinyModel):
    """TinyModel whose loss is a mean over the rows with ``y > 0`` only, as masked-LM's is over its masked tokens:
    micro-batches count different numbers of targets, so only ``loss_weight`` makes accumulation exact."""

    count_metrics = ("kept",)
    loss_weight = "kept"

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h = self.drop(torch.nn.functional.gelu(self.norm(self.inp(batch["x"]))))
        pred = self.out(h)
        kept = (batch["y"] > 0).float()
        loss = (kept * (pred - batch["y"]) ** 2).sum() / kept.sum().clamp(min=1.0)
        return loss, {"kept": kept.sum()}


def make_config(**overrides: Any) -> TrainConfig:
    """A quick config for the tiny task; every test overrides what it is about."""
    base: dict[str, Any] = {
        "steps": 12,
        "batch_size": 8,
        "lr": 3e-2,
        "min_lr": 3e-3,
        "warmup_steps": 2,
        "weight_decay": 0.01,
        "checkpoint_every": 0,
        "log_every": 1,
        "device": "cpu",
    }
    base.update(overrides)
    return TrainConfig(**base)


def _count_allreduce(module: nn.Module) -> list[int]:
    """Count DDP's gradient all-reduces (one per bucket per synced backward); [0] when not under DDP."""
    calls = [0]
    if isinstance(module, nn.parallel.DistributedDataParallel):
        # Left unannotated: DDP rejects annotations it cannot match (this module has postponed annotations).
        def hook(state, bucket):
            calls[0] += 1
            return allreduce_hook(None, bucket)  # type: ignore[arg-type]

        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

        module.register_comm_hook(None, hook)
    return calls


def gloo_threads() -> list[str]:
    """This process's live gloo threads (Linux: /proc/self/task/*/comm); none once the group is freed."""
    tasks = Path("/proc/self/task")
    names = [(t / "comm").read_text().strip() for t in tasks.iterdir()] if tasks.is_dir() else []
    return [n for n in names if "gloo" in n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--micro", type=int, default=None)
    parser.add_argument("--ckpt-every", type=int, default=0)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--stall-after", type=int, default=None, help="block after serving this many samples")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--counts", action="store_true", help="train CountingModel (count metrics)")
    parser.add_argument("--weighted", action="store_true", help="train WeightedModel (a loss weight: its targets)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the same kernels in every run, so CPU results repeat bit for bit
    torch.manual_seed(0)
    model = (WeightedModel if args.weighted else CountingModel if args.counts else TinyModel)(dropout=args.dropout)
    config = make_config(
        steps=args.steps, batch_size=args.batch, micro_batch_size=args.micro, checkpoint_every=args.ckpt_every
    )
    from registry_core.training import Trainer

    with Trainer(
        model, TinyRegression(stall_after=args.stall_after), config, args.out, val_data=TinyRegression(16, seed=9)
    ) as trainer:
        allreduce_calls = _count_allreduce(trainer.train_module)
        result = trainer.fit(resume=args.resume)
        if trainer.ctx.is_main:
            print(
                json.dumps(
                    {
                        "step": result.step,
                        "loss": result.loss,
                        "resumed_from": result.resumed_from,
                        "world": trainer.ctx.world_size,
                        "pid": os.getpid(),
                        "allreduce_calls": allreduce_calls[0],
                    }
                ),
                flush=True,
            )
    left = gloo_threads()  # the group the trainer created is freed on close: its threads must be gone
    if left:
        print(f"rank {os.environ.get('RANK', 0)}: gloo threads alive after Trainer.close: {left}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
