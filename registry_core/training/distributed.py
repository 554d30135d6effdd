"""Rank, world size and device from the ``torchrun`` environment; process-group set-up and tear-down.

A process group must be gone before the interpreter exits: a gloo worker thread still alive then may need
the GIL to free the tensors of a finished collective, and dies with ``terminate called without an active
exception`` (SIGABRT) while Python finalizes, so a finished run reads as a failed job. Two things keep a
group alive past ``destroy_process_group``: a reference held by a DDP wrapper, and importing
``torch._dynamo`` while the group exists (DDP does): it imports ``torch.distributed.fsdp``, whose modules
bind the default group when imported (10 references on torch 2.13, default arguments such as
``ShardedGradScaler``'s ``process_group=dist.group.WORLD``, which no one releases). So
:func:`setup_distributed` imports ``torch._dynamo`` before it creates the group, and
:func:`teardown_distributed` drops the group only once nothing else holds it, which joins its threads.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from registry_core._errors import RegistryCoreError, UsageError

__all__ = [
    "DistContext",
    "RankFailed",
    "all_gather_objects",
    "mean_across_ranks",
    "one_outcome",
    "setup_distributed",
    "sum_across_ranks",
    "teardown_distributed",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: its rank among ``world_size``, its device, and whether it owns the group."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    #: True when this module called ``init_process_group`` (and so should destroy it).
    owns_group: bool

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer (set by torchrun)") from exc


def setup_distributed(device: str = "auto") -> DistContext:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK), or run alone without one.

    ``device``: ``auto`` takes CUDA when available; on CUDA each rank uses ``cuda:LOCAL_RANK`` and NCCL,
    on CPU the group uses gloo.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device {device!r} is not one of auto, cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = _env_int("LOCAL_RANK", rank)
        owns = False
    else:
        rank, world, local = _env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0)
        owns = world > 1
    if use_cuda:
        torch.cuda.set_device(local % max(torch.cuda.device_count(), 1))
        dev = torch.device("cuda", torch.cuda.current_device())
    else:
        dev = torch.device("cpu")
    if owns:
        # DDP imports torch._dynamo; imported after the group exists it pins the group (module docstring).
        importlib.import_module("torch._dynamo")

        backend = "nccl" if use_cuda else "gloo"
        extra: dict[str, Any] = {"device_id": dev} if use_cuda else {}
        dist.init_process_group(backend=backend, rank=rank, world_size=world, **extra)
    return DistContext(rank=rank, world_size=world, local_rank=local, device=dev, owns_group=owns)


def teardown_distributed(ctx: DistContext) -> None:
    """Leave the process group this process created, all ranks together, and free it (joins its threads).

    Call it after the DDP wrappers over the group are dropped; a no-op when ``ctx`` does not own a group.
    """
    if not (ctx.owns_group and dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()  # a rank that tears gloo down while its peer still talks to it can abort
    gc.collect()  # a dropped DDP wrapper sits in reference cycles that still hold the group
    dist.destroy_process_group()  # drops the last reference: the group's destructor joins its threads


def mean_across_ranks(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The element-wise mean of ``values`` over all ranks (itself when running alone)."""
    if not ctx.distributed:
        return values
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / ctx.world_size


def sum_across_ranks(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The element-wise sum of ``values`` over all ranks (itself when running alone)."""
    if not ctx.distributed:
        return values
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def all_gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj``, in rank order (a one-item list when running alone)."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


class RankFailed(RegistryCoreError):
    """Another rank's error, on a rank that did not fail itself: its message is that rank's message, word for word
    (used when the original exception cannot be rebuilt here)."""


class _RankFailedUsage(RankFailed, UsageError):
    """Another rank's usage error (the CLI exits 2 for it, as on the rank that raised it)."""


def _describe(error: BaseException) -> tuple[bytes | None, str, bool]:
    """What other ranks need to raise ``error`` too: the pickled exception when a copy prints the same, its
    message, and whether it is a usage error."""
    blob: bytes | None
    try:
        blob = pickle.dumps(error)
        copy = pickle.loads(blob)
        if type(copy) is not type(error) or str(copy) != str(error):
            blob = None
    except Exception:  # an exception that does not pickle is sent as its message
        blob = None
    return blob, str(error), isinstance(error, UsageError)


def _rebuild(described: tuple[bytes | None, str, bool]) -> Exception:
    blob, message, usage = described
    if blob is not None:
        try:
            error = pickle.loads(blob)  # from a rank of this same job (as all_gather_object's own pickles are)
            if isinstance(error, Exception):
                return error
        except Exception:  # fall back to the message
            pass
    return _RankFailedUsage(message) if usage else RankFailed(message)


@contextlib.contextmanager
def one_outcome(ctx: DistContext) -> Iterator[None]:
    """Every rank leaves the block the same way: when the block raised on any rank, every rank raises the error
    of the lowest failing rank (the same message, so each prints the same ``error:`` line) instead of waiting in
    a later collective for a rank that is gone. A collective itself: every rank must enter the block.

    Only ``Exception`` is shared; Ctrl-C and ``SystemExit`` go straight out (torchrun stops the other ranks).
    Alone (no process group) the block runs as is.
    """
    if not ctx.distributed:
        yield
        return
    mine: tuple[bytes | None, str, bool] | None = None
    error: Exception | None = None
    try:
        yield
    except Exception as exc:
        error, mine = exc, _describe(exc)
    outcomes = all_gather_objects(mine, ctx)
    failed = [rank for rank, outcome in enumerate(outcomes) if outcome is not None]
    if not failed:
        return
    if error is not None and failed[0] == ctx.rank:
        raise error  # this rank's own error, with its traceback
    raise _rebuild(outcomes[failed[0]]) from None
