"""Run the block tasks of a prediction on a dask scheduler, with a progress bar of blocks on stderr.

The schedulers are the ingest's: ``threads``, ``synchronous``, ``local:N`` (a new local cluster of N
worker processes) or a distributed scheduler's address (``tcp://host:8786``).
"""

from __future__ import annotations

from typing import Any

from registry_gfm.data.specs import scheduler_problem
from registry_gfm.errors import PredictError

__all__ = ["check_scheduler", "run_blocks"]


def check_scheduler(spec: str) -> str:
    """``spec`` when it names a scheduler; PredictError saying which forms are accepted otherwise."""
    problem = scheduler_problem(spec)
    if problem is None:
        return spec
    raise PredictError(f"--scheduler {problem}")


def _bar(total: int, enabled: bool, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="block", disable=not enabled, leave=False)


def run_blocks(writes: Any, scheduler: str, *, progress: bool, desc: str = "predict") -> int:
    """Compute ``writes`` (a dask array with one chunk per block, each chunk's task writing its block and
    returning a count) and return the sum of the counts.

    A local scheduler counts finished blocks through a dask callback; a distributed one through its futures.
    """
    from registry_gfm.data.stac_zarr import dask_scheduler

    name = writes.name
    total = writes.npartitions
    with dask_scheduler(check_scheduler(scheduler)) as sched, _bar(total, progress, desc) as bar:
        if isinstance(sched, str):
            from dask.callbacks import Callback

            def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
                if isinstance(key, tuple) and key and key[0] == name:
                    bar.update(1)

            with Callback(posttask=posttask):
                return int(writes.compute(scheduler=sched).sum())
        from distributed import as_completed

        total = 0
        for future in as_completed(sched.compute(list(writes.to_delayed().ravel()))):
            total += int(future.result().sum())
            bar.update(1)
        return total
