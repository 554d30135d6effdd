"""The training loop: AdamW with decay groups, warm-up + cosine, accumulation, DDP, checkpoints, exact resume."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, default_collate

from registry_core._errors import RegistryCoreError
from registry_core.pipeline._train_config import TrainConfig
from registry_core.training.checkpoint import (
    FORMAT_VERSION,
    atomic_torch_save,
    capture_rng,
    clean_state_dict,
    load_checkpoint,
    restore_rng,
)
from registry_core.training.data_order import StripedBatchSampler
from registry_core.training.distributed import (
    DistContext,
    all_gather_objects,
    one_outcome,
    setup_distributed,
    sum_across_ranks,
    teardown_distributed,
)
from registry_core.training.optim import build_optimizer, lr_at, set_lr
from registry_core.training.progress import MetricsLog, ProgressReporter
from registry_core.training.threads import choose_threads

__all__ = ["TrainResult", "Trainer", "TrainingDiverged", "seed_everything"]

#: Dense bf16 peak TFLOP/s of accelerators we can name, for MFU when ``peak_tflops`` is not set.
_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}


class TrainingDiverged(RegistryCoreError, RuntimeError):
    """The loss or gradient norm became NaN or infinite; the step was not taken and no checkpoint written."""

    def __init__(self, step: int, loss: float, grad_norm: float, checkpoint: Path | None, last_good: int | None):
        self.step, self.loss, self.grad_norm, self.checkpoint = step, loss, grad_norm, checkpoint
        kept = (
            f"the last good checkpoint {checkpoint} (step {last_good}) is untouched"
            if checkpoint is not None and last_good is not None
            else "no checkpoint had been written yet"
        )
        super().__init__(
            f"training diverged at step {step}: loss {loss}, gradient norm {grad_norm}; the step was not applied "
            f"and {kept}. Lower train.lr, raise train.warmup_steps or set train.grad_clip, then resume."
        )


@dataclass(frozen=True)
class TrainResult:
    """What ``fit`` did: where it ended, the last loss and validation metrics, and the final checkpoint."""

    #: Optimizer steps completed (equals ``config.steps`` when the run finished).
    step: int
    #: Samples consumed from the training stream, all ranks together.
    samples: int
    #: Loss of the last step taken in this call (None when nothing was left to do).
    loss: float | None
    #: Validation metrics at the end (None without validation data).
    val: dict[str, float] | None
    #: ``out_dir/checkpoints/last.pt``.
    checkpoint: Path | None
    #: Wall-clock seconds of training, summed over resumed runs.
    elapsed_s: float
    #: Mean throughput of this call in ``units`` per second (tokens, chips or samples).
    units_per_s: float | None
    #: Step this call resumed from (None for a fresh start).
    resumed_from: int | None = None
    #: torch's threads per rank and the usable cores they were chosen from (``ThreadChoice.as_dict``).
    threads: dict[str, Any] | None = None


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) with one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` (tensors in dicts, lists, tuples, namedtuples, dataclasses) with every tensor on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(
            batch, **{f.name: to_device(getattr(batch, f.name), device) for f in dataclasses.fields(batch) if f.init}
        )
    return batch


def _split_output(out: Any, where: str) -> tuple[torch.Tensor, Mapping[str, Any]]:
    """``model(batch)`` gives a loss tensor or ``(loss, metrics)``; anything else is the model's error."""
    metrics: Mapping[str, Any] = {}
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Mapping):
        out, metrics = out
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        raise TypeError(f"{where} returned {type(out).__name__}; expected a scalar loss tensor or (loss, metrics dict)")
    return out.reshape(()), metrics


def _derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (seed, rank, position), the same in every process and run."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _count(value: float) -> int:
    """A count metric summed from float parts (a float32 sum of integers) as the integer it is."""
    return round(value)


class Trainer:
    """Trains ``model`` on ``train_data`` for ``config.steps`` optimizer steps; one instance per rank.

    ``model(batch)`` returns a loss tensor or ``(loss, metrics)``. ``units`` names what throughput counts:
    ``"tokens"`` uses ``model.tokens_per_sample`` (falling back to samples), anything else counts samples
    under that name (e.g. ``"chips"``). Under ``torchrun`` it trains with DDP; rank 0 writes all files.

    Metrics named in ``model.count_metrics`` are sums (over micro-batches and ranks per step, over the
    whole pass in validation) logged as integers; the others are means. With ``model.loss_weight`` (a
    count metric) the validation loss weighs each batch by it: the per-token mean over the split.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Any,
        config: TrainConfig,
        out_dir: Path,
        *,
        val_data: Any = None,
        collate: Callable[[list[Any]], Any] | None = None,
        units: str = "tokens",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Trainer needs an nn.Module as model, got {type(model).__name__}")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Trainer needs a TrainConfig as config, got {type(config).__name__}")
        for name, data in (("train_data", train_data), ("val_data", val_data)):
            if data is not None and not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
                raise TypeError(
                    f"{name} must be a map-style dataset (__len__ and __getitem__), got {type(data).__name__}"
                )
        if len(train_data) == 0:
            raise ValueError("train_data is empty; expected at least one sample")
        self.config = config
        self.out_dir = Path(out_dir)
        self.train_data, self.val_data = train_data, val_data
        self.collate = collate or default_collate
        self.ctx: DistContext = setup_distributed(config.device)
        self.threads = choose_threads(config.threads, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
        torch.set_num_threads(self.threads.torch)  # never more than the cores left after the data path
        self.accum = config.accumulation_steps(self.ctx.world_size)
        self.micro = config.micro_batch(self.ctx.world_size)
        self.checkpoint_path = self.out_dir / "checkpoints" / "last.pt"
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl", enabled=self.ctx.is_main)

        # The raw module owns the weights and gives clean state-dict keys; the others wrap it.
        self.model = model.to(self.ctx.device)
        self._autocast_dtype = self._pick_autocast()
        self._eval_model: nn.Module = torch.compile(self.model) if config.compile else self.model  # type: ignore[assignment]
        self._train_model: nn.Module = self._eval_model
        if self.ctx.distributed:
            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self._train_model = DistributedDataParallel(self._eval_model, device_ids=ids)
        self.optimizer = build_optimizer(self.model, config, fused=self.ctx.device.type == "cuda")
        self._params = [p for g in self.optimizer.param_groups for p in g["params"]]

        tokens = getattr(model, "tokens_per_sample", None)
        if units == "tokens" and tokens is None:
            units = "samples"  # the model does not say how many tokens a sample holds
        self.units = units
        self._units_per_sample = int(tokens) if units == "tokens" and tokens is not None else 1
        self._flops_per_unit = getattr(model, "flops_per_token", None) if units == "tokens" else None
        self._counts = frozenset(getattr(model, "count_metrics", ()) or ())
        self._loss_weight: str | None = getattr(model, "loss_weight", None)
        self._peak_flops = self._pick_peak_flops()
        self.step = 0
        self.consumed = 0
        self._elapsed_before = 0.0
        self._last_good: int | None = None
        self._t0 = time.perf_counter()

    @property
    def train_module(self) -> nn.Module:
        """The module training runs through: ``model`` wrapped by torch.compile and/or DDP as configured."""
        return self._train_model

    # -- set-up helpers ---------------------------------------------------------------------------------

    def _pick_autocast(self) -> torch.dtype | None:
        if self.config.precision != "bf16":
            return None
        dev = self.ctx.device
        if dev.type == "cuda" and not torch.cuda.is_bf16_supported():
            warnings.warn(
                f"train.precision is bf16 but {torch.cuda.get_device_name(dev)} lacks bf16; using fp32", stacklevel=3
            )
            return None
        return torch.bfloat16

    def _pick_peak_flops(self) -> float | None:
        if self.config.peak_tflops:
            return self.config.peak_tflops * 1e12
        if self.ctx.device.type != "cuda":
            return None
        name = torch.cuda.get_device_name(self.ctx.device)
        for key, tflops in _PEAK_TFLOPS.items():
            if key in name:
                return tflops * 1e12
        return None

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.ctx.device.type, dtype=self._autocast_dtype)

    def _loader(self, batch_sampler: Any, data: Any, seed: int) -> DataLoader[Any]:
        # A private generator seeds worker processes, so making the iterator leaves the global RNG alone.
        gen = torch.Generator()
        gen.manual_seed(seed)
        return DataLoader(
            data,
            batch_sampler=batch_sampler,
            collate_fn=self.collate,
            num_workers=self.config.num_workers,
            pin_memory=self.ctx.device.type == "cuda",
            generator=gen,
        )

    # -- checkpoints ------------------------------------------------------------------------------------

    def _save(self) -> None:
        rng = all_gather_objects(capture_rng(), self.ctx)  # every rank's random state; collective
        if self.ctx.is_main:
            cfg = self.config
            state = {
                "format": FORMAT_VERSION,
                "step": self.step,
                "consumed": self.consumed,
                "batch_size": cfg.batch_size,
                "world_size": self.ctx.world_size,
                "seed": cfg.seed,
                "model": clean_state_dict(self.model.state_dict()),
                "optimizer": self.optimizer.state_dict(),
                "schedule": {
                    "kind": "linear_warmup_cosine",
                    "next_lr": lr_at(self.step, cfg),
                    "peak_lr": cfg.lr,
                    "min_lr": cfg.min_lr,
                    "warmup_steps": cfg.warmup_steps,
                    "steps": cfg.steps,
                },
                "rng": rng,
                "elapsed_s": self._elapsed_before + self._elapsed(),
                "config": dataclasses.asdict(cfg),
            }
            atomic_torch_save(state, self.checkpoint_path)
        self._last_good = self.step

    def _restore(self) -> bool:
        """Load ``last.pt`` into model, optimizer, RNG and data position; False when there is none."""
        if not self.checkpoint_path.is_file():
            return False
        # Load to CPU: load_state_dict copies onto the model's device, so no second copy sits on the GPU.
        ckpt = load_checkpoint(self.checkpoint_path, map_location="cpu")
        path = self.checkpoint_path
        if ckpt["batch_size"] != self.config.batch_size:
            raise ValueError(
                f"checkpoint {path} was trained with train.batch_size {ckpt['batch_size']}, this run has "
                f"{self.config.batch_size}; resume with the same global batch (any rank count that divides it)"
            )
        if ckpt["seed"] != self.config.seed:
            raise ValueError(f"checkpoint {path} used train.seed {ckpt['seed']}, this run has {self.config.seed}")
        if ckpt["schedule"]["steps"] != self.config.steps and self.ctx.is_main:
            warnings.warn(
                f"checkpoint {path} was scheduled for {ckpt['schedule']['steps']} steps, this run for "
                f"{self.config.steps}; the cosine decay continues on the new length",
                stacklevel=3,
            )
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise ValueError(f"checkpoint {path} does not fit the model: {exc}") from exc
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.step, self.consumed = int(ckpt["step"]), int(ckpt["consumed"])
        self._elapsed_before = float(ckpt.get("elapsed_s", 0.0))
        states = ckpt["rng"]
        if len(states) == self.ctx.world_size:
            restore_rng(states[self.ctx.rank])
        else:
            # Data order does not depend on it; only model-side randomness (dropout, masks) takes a new stream.
            seed_everything(_derive_seed(self.config.seed, self.ctx.rank, self.step))
            if self.ctx.is_main:
                warnings.warn(
                    f"checkpoint {path} holds random states of {len(states)} ranks, this run has "
                    f"{self.ctx.world_size}; data order resumes exactly, dropout/masking streams are reseeded",
                    stacklevel=3,
                )
        self._last_good = self.step
        return True

    # -- training ---------------------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def _forward(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, Mapping[str, Any]]:
        with self._autocast():
            out = model(batch)
        return _split_output(out, f"model {type(self.model).__name__}")

    def fit(self, resume: bool = False, on_ready: Callable[[], None] | None = None) -> TrainResult:
        """Run optimizer steps up to ``config.steps``; with ``resume`` continue from ``last.pt`` when present.

        ``on_ready`` is called once the checkpoint and log were read, before anything is trained or written: a
        checkpoint or log that cannot be read fails with the run folder as it was.
        """
        cfg, ctx = self.config, self.ctx
        self._t0 = time.perf_counter()
        resumed_from = self._start(resume, on_ready)
        if ctx.is_main:
            print(self.threads.describe(), file=sys.stderr, flush=True)
        if self.step >= cfg.steps:
            return self._result(None, None, resumed_from, None)

        sampler = StripedBatchSampler(
            len(self.train_data),
            seed=cfg.seed,
            batch_size=cfg.batch_size,
            micro_batch_size=self.micro,
            rank=ctx.rank,
            world_size=ctx.world_size,
            consumed=self.consumed,
            steps=cfg.steps,
        )
        batches = iter(self._loader(sampler, self.train_data, seed=_derive_seed(cfg.seed, ctx.rank, self.consumed)))
        bar = ProgressReporter(cfg.steps, self.step, self.units, enabled=ctx.is_main)
        first_step, loss_value = self.step, None
        val: dict[str, float] | None = None
        window_t, window_units = time.perf_counter(), 0.0
        units_per_step = cfg.batch_size * self._units_per_sample
        if resumed_from is None and cfg.eval_every and self.val_data is not None:
            # The untrained model's validation loss: the first point of the curve every later one compares to.
            val = self.evaluate(self.val_data)
            record0: dict[str, Any] = {"step": 0, **{f"val_{k}": v for k, v in val.items()}}
            record0["elapsed"] = self._elapsed()
            self.metrics.append(record0)
            bar.log(record0, None)
        self._train_model.train()
        try:
            while self.step < cfg.steps:
                t_step = time.perf_counter()
                lr = lr_at(self.step, cfg)
                loss_value, grad_norm, train_metrics = self._optimizer_step(batches, lr)
                now = time.perf_counter()
                window_units += units_per_step
                bar.step(self.step, loss_value, units_per_step / max(now - t_step, 1e-9))

                record: dict[str, Any] = {}
                last = self.step == cfg.steps
                if self.step % cfg.log_every == 0 or last:
                    rate = window_units / max(now - window_t, 1e-9)
                    record = self._train_record(loss_value, lr, grad_norm, rate, train_metrics)
                    window_t, window_units = now, 0.0
                if self.val_data is not None and ((cfg.eval_every and self.step % cfg.eval_every == 0) or last):
                    val = self.evaluate(self.val_data)
                    record.update({"step": self.step, **{f"val_{k}": v for k, v in val.items()}})
                if record:
                    record["elapsed"] = self._elapsed_before + self._elapsed()
                    self.metrics.append(record)
                    remaining = (cfg.steps - self.step) * (self._elapsed() / max(self.step - first_step, 1))
                    bar.log(record, remaining)
                # Last, so the saved random state is the one the next step starts from, evaluation included.
                if (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0) or last:
                    self._save()
        finally:
            bar.close()
        if ctx.distributed:
            torch.distributed.barrier()  # last.pt is complete before any rank returns
        return self._result(loss_value, val, resumed_from, (self.step - first_step) * units_per_step)

    def _start(self, resume: bool, on_ready: Callable[[], None] | None) -> int | None:
        """Restore ``last.pt`` (with ``resume``) or start at step 0, trim the log, call ``on_ready``; the step
        resumed from, or None. Every rank ends with the same error when one cannot read the checkpoint or log."""
        ctx, resumed_from = self.ctx, None
        with one_outcome(ctx):  # a checkpoint one rank cannot read ends every rank with that error
            if resume and self._restore():
                resumed_from = self.step
            else:
                if resume and ctx.is_main:
                    warnings.warn(f"no checkpoint at {self.checkpoint_path}; starting from step 0", stacklevel=3)
                self.step, self.consumed, self._elapsed_before, self._last_good = 0, 0, 0.0, None
                seed_everything(self.config.seed + ctx.rank)
        with one_outcome(ctx):  # the log is rewritten only once every rank has read the checkpoint
            if ctx.is_main:
                self.metrics.truncate_after(self.step)  # steps after the checkpoint are rerun and logged again
            if on_ready is not None:
                on_ready()
        return resumed_from

    def _optimizer_step(self, batches: Iterator[Any], lr: float) -> tuple[float, float, dict[str, torch.Tensor]]:
        """One optimizer step at ``lr``; TrainingDiverged (and no update) when loss or gradient is not finite."""
        set_lr(self.optimizer, lr)
        loss_t, grad_norm_t, metrics = self._train_step(batches)
        loss, grad_norm = (float(x) for x in torch.stack([loss_t, grad_norm_t]).tolist())
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            kept = self.checkpoint_path if self._last_good is not None else None
            raise TrainingDiverged(self.step + 1, loss, grad_norm, kept, self._last_good)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.consumed += self.config.batch_size
        return loss, grad_norm, metrics

    def _train_record(
        self, loss: float, lr: float, grad_norm: float, rate: float, metrics: Mapping[str, torch.Tensor]
    ) -> dict[str, Any]:
        """The metrics.jsonl line of a log step; the model's own metrics are averaged over ranks (collective)."""
        record: dict[str, Any] = {
            "step": self.step,
            "loss": loss,
            "lr": lr,
            "grad_norm": grad_norm,
            "units_per_s": rate,
            "units": self.units,
            "samples": self.consumed,
        }
        if self._flops_per_unit and self._peak_flops:
            record["mfu"] = self._flops_per_unit * rate / (self._peak_flops * self.ctx.world_size)
        if metrics:
            names = sorted(metrics)
            values = torch.stack([metrics[n] for n in names])
            counted = torch.tensor([n in self._counts for n in names], device=values.device)
            # One all-reduce: counts summed over ranks, the other metrics averaged.
            summed = sum_across_ranks(torch.where(counted, values, values / self.ctx.world_size), self.ctx)
            for name, value in zip(names, summed.tolist()):
                record[f"train_{name}" if name in record else name] = _count(value) if name in self._counts else value
        return record

    def _train_step(self, batches: Iterator[Any]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Forward/backward over the accumulation micro-batches: the gradient of one big batch.

        Each micro-batch's loss is a mean over what it counts (``model.loss_weight``: its tokens, pixels or
        pairs; else one per micro-batch). The backward pass takes ``loss * count``; once DDP has averaged the
        gradients over ranks they are rescaled by ``ranks / total count``, so N micro-batches on R ranks give
        the loss and gradient of the per-count mean over the whole global batch. Returns that loss, the global
        gradient norm (before clipping), and this rank's model metrics (counts summed, the others averaged).
        """
        loss_sum = torch.zeros((), device=self.ctx.device)
        weight_sum = torch.zeros((), device=self.ctx.device)
        metric_sums: dict[str, torch.Tensor] = {}
        for k in range(self.accum):
            batch = to_device(next(batches), self.ctx.device)
            inner = self.ctx.distributed and k < self.accum - 1
            # Inner micro-steps only accumulate locally; DDP all-reduces gradients on the last one.
            sync = self._train_model.no_sync() if inner else contextlib.nullcontext()  # type: ignore[operator]
            with sync:
                loss, metrics = self._forward(self._train_model, batch)
                weight = self._micro_weight(metrics)
                (loss * weight).backward()
            loss_sum += loss.detach().float() * weight
            weight_sum += weight
            for name, value in metrics.items():
                if name == "loss":  # the model's own report of its loss: the weighted loss above replaces it
                    continue
                part = torch.as_tensor(value, device=self.ctx.device).detach().float().reshape(())
                part = part if name in self._counts else part / self.accum
                metric_sums[name] = metric_sums[name] + part if name in metric_sums else part
        totals = sum_across_ranks(torch.stack([loss_sum, weight_sum]), self.ctx)
        total_weight = totals[1].clamp(min=1e-12)  # nothing counted anywhere: zero loss and gradient
        scale = self.ctx.world_size / total_weight  # DDP averaged over ranks; undo that, divide by the total count
        for param in self._params:
            if param.grad is not None:
                param.grad.mul_(scale.to(param.grad.dtype))
        loss_mean = totals[0] / total_weight
        if self.config.grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(self._params, self.config.grad_clip)
        else:
            grads = [p.grad for p in self._params if p.grad is not None]
            norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        return loss_mean, norm.to(loss_mean.device, torch.float32), metric_sums

    def _micro_weight(self, metrics: Mapping[str, Any]) -> torch.Tensor:
        """What a micro-batch's loss averages over (``metrics[model.loss_weight]``), or 1 without a loss_weight."""
        if self._loss_weight is None:
            return torch.ones((), device=self.ctx.device)
        if self._loss_weight not in metrics:
            raise ValueError(f"model {type(self.model).__name__} names loss_weight {self._loss_weight!r} but its "
                             f"forward returned no such metric (it returned {sorted(metrics)})")
        value = torch.as_tensor(metrics[self._loss_weight], device=self.ctx.device)
        return value.detach().float().reshape(())

    def _result(
        self, loss: float | None, val: dict[str, float] | None, resumed_from: int | None, units: float | None
    ) -> TrainResult:
        took = self._elapsed()
        return TrainResult(
            step=self.step,
            samples=self.consumed,
            loss=loss,
            val=val,
            checkpoint=self.checkpoint_path if self.checkpoint_path.is_file() else None,
            elapsed_s=self._elapsed_before + took,
            units_per_s=(units / took) if units and took > 0 else None,
            resumed_from=resumed_from,
            threads=self.threads.as_dict(),
        )

    # -- evaluation -------------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, val_data: Any = None) -> dict[str, float]:
        """Loss and model metrics over one full pass of ``val_data``, all ranks together.

        The loss is the mean over the split (batches weighted by ``model.loss_weight``, else by samples),
        count metrics are totals, the others means over samples.
        """
        data = val_data if val_data is not None else self.val_data
        if data is None:
            raise ValueError("evaluate() needs val_data: pass it here or to Trainer(val_data=...)")
        ctx = self.ctx
        mine = list(range(ctx.rank, len(data), ctx.world_size))  # striped like training
        batches = [mine[i : i + self.micro] for i in range(0, len(mine), self.micro)]
        was_training = self.model.training
        self.model.eval()
        sums: dict[str, float] = {}
        count, weight = 0, 0.0
        try:
            for indices, batch in zip(batches, self._loader(batches, data, seed=self.config.seed)):
                loss, metrics = self._forward(self._eval_model, to_device(batch, ctx.device))
                n = len(indices)
                # The model's loss is a mean over its batch (over its tokens, with a loss_weight): weigh it so.
                key_w = self._loss_weight
                w = float(metrics[key_w]) if key_w is not None and key_w in metrics else float(n)
                sums["loss"] = sums.get("loss", 0.0) + float(loss) * w
                for key, value in metrics.items():
                    if key != "loss":  # a model that also reports its loss as a metric is not counted twice
                        sums[key] = sums.get(key, 0.0) + float(value) * (1 if key in self._counts else n)
                count, weight = count + n, weight + w
        finally:
            self.model.train(was_training)
        totals: dict[str, float] = {}
        total, total_weight = 0, 0.0
        for part_sums, part_count, part_weight in all_gather_objects((sums, count, weight), ctx):
            total, total_weight = total + part_count, total_weight + part_weight
            for key, value in part_sums.items():
                totals[key] = totals.get(key, 0.0) + value
        if total == 0:
            raise ValueError("val_data is empty; expected at least one sample to evaluate")
        out: dict[str, float] = {"loss": totals.pop("loss") / total_weight if total_weight else 0.0}
        for key, value in totals.items():
            out[key] = _count(value) if key in self._counts else value / total
        return out

    # -- lifetime ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Drop the DDP wrapper (it holds the process group) and leave the group when this trainer created it.

        Whoever created the group (this trainer, or the caller that passed it in) frees it afterwards with
        ``teardown_distributed``; a group left alive at interpreter exit can abort the process (see there).
        """
        self._train_model = self._eval_model
        teardown_distributed(self.ctx)

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
