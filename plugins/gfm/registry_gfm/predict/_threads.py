"""How ``predict`` shares the usable cores between torch and dask, so that neither starves the other.

Left alone, torch gives each model call one thread per core and dask's threaded scheduler runs one block task per
core, each calling the model: cores x cores threads. Here torch's threads per call (``--threads``, else
``OMP_NUM_THREADS``, else one, or the cores' share of each block when a scene has fewer blocks than cores) fix how
many calls may run at once (cores // threads, at least one), and dask gets one thread per usable core. On 2 cores
one thread per call kept pace with the oversubscribed default it replaces (2048^2: within 3%; beside another busy
process 20% faster) and beat one two-thread call at a time; a one-block scene gives its one call both cores (1.3 s
against 2.2 s). See docs/scaling.md, "Threads per rank".
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from registry_core.cores import env_threads, usable_cores
from registry_gfm.errors import PredictError

__all__ = ["CallGate", "PredictThreads", "choose_predict_threads", "torch_threads"]


@dataclass(frozen=True)
class PredictThreads:
    """A predict's threads: torch's per model call, model calls at once and dask threads per process, the worker
    processes computing the blocks (N for ``local:N``, 0 when this process does), the usable cores, and why."""

    torch: int
    calls: int
    dask: int
    workers: int
    cores: int
    source: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for predict's stderr, like the trainer's ``threads:`` line."""
        if self.workers:
            return (f"threads: torch {self.torch} per model call in each of {self.workers} worker process(es) of "
                    f"1 dask thread, on {self.cores} usable core(s) ({self.source})")
        return (f"threads: torch {self.torch} per model call, {self.calls} call(s) at a time, {self.dask} dask "
                f"thread(s), on {self.cores} usable core(s) ({self.source})")


def choose_predict_threads(requested: int | None, scheduler: str, cores: int | None = None,
                           blocks: int | None = None) -> PredictThreads | None:
    """The threads of a predict of ``blocks`` blocks (None: many) on ``scheduler``; None for a cluster given by
    address (its workers keep their own settings; PredictError if ``requested``). ``requested`` (``--threads``) wins,
    then ``OMP_NUM_THREADS``; by default a call gets one thread, or the cores' share of each block when there are
    fewer blocks than cores, a synchronous predict's one call every core, a ``local:N`` worker its share of them."""
    if requested is not None and requested < 1:
        raise PredictError(f"--threads {requested} must be at least 1 (torch threads per model call)")
    if "://" in scheduler:
        if requested is not None:
            raise PredictError(f"--threads applies to a predict on this machine; the workers of --scheduler "
                               f"{scheduler} keep their own threads (start them with OMP_NUM_THREADS set)")
        return None
    cores = usable_cores() if cores is None else cores
    workers = int(scheduler.split(":", 1)[1]) if scheduler.startswith("local:") else 0
    omp = env_threads()
    if requested is not None:
        torch, source = requested, "--threads"
    elif omp is not None:
        torch, source = omp, "OMP_NUM_THREADS"
    elif workers:
        torch, source = max(1, cores // workers), "default: the usable cores shared by the worker processes"
    elif scheduler == "synchronous":
        torch, source = cores, "default: every usable core to the one model call"
    elif blocks is not None and blocks < cores:
        torch = cores // max(1, blocks)
        source = f"default: {blocks} block(s) share the usable cores"
    else:
        torch, source = 1, "default: one thread per model call, a call per usable core"
    if workers or scheduler == "synchronous":
        return PredictThreads(torch, 1, 1, workers, cores, source)
    return PredictThreads(torch, max(1, cores // torch), cores, 0, cores, source)


class CallGate:
    """At most ``limit`` model calls of one process at once, run by a pool of ``limit`` threads that every block's
    task hands its calls to (:meth:`submit`): torch's threads per call times the calls running stay within the
    cores, and the last block's calls use every slot instead of one (with a thread per block, 2 cores sat half idle
    for a third of a 1024^2 scene when the largest block came last). A copy sent to a worker is a new gate."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, call: Callable[..., Any], *args: Any) -> Future[Any]:
        """``call(*args)`` on one of the gate's threads, once one is free (first in, first run)."""
        with self._lock:
            if self._pool is None:  # its threads end once the gate is collected (ThreadPoolExecutor's weakref)
                self._pool = ThreadPoolExecutor(self.limit, thread_name_prefix="predict-call")
            return self._pool.submit(call, *args)

    def __reduce__(self) -> tuple[type[CallGate], tuple[int]]:
        return CallGate, (self.limit,)

    def __dask_tokenize__(self) -> tuple[str, int, int]:
        return ("CallGate", self.limit, id(self))


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` (None: left alone) while the block runs, then put back as they were,
    so a predict called in-process leaves its caller's setting."""
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
