"""How many threads torch may use per rank without oversubscribing the machine.

torch starts one intra-op thread per core it sees, whatever else runs: on a busy 2-core machine its two
threads plus the data readers' threads (dask, GDAL) made 10 MAE steps take 105 s instead of 6 s. The
default here counts the cores this process may really use (its CPU affinity and a cgroup CPU quota), shares
them between the ranks on this machine, and leaves one for the data path when there are at least two.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from registry_core.cores import CGROUP_CPU_MAX, env_threads, usable_cores

__all__ = ["CGROUP_CPU_MAX", "ThreadChoice", "choose_threads", "env_threads", "usable_cores"]


@dataclass(frozen=True)
class ThreadChoice:
    """torch's intra-op threads for this rank, the usable cores they were chosen from, and why."""

    torch: int
    cores: int
    ranks: int
    source: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for the run's header."""
        return (f"threads: torch {self.torch} per rank, {self.ranks} rank(s) on {self.cores} usable core(s) "
                f"({self.source})")


def choose_threads(requested: int | None, local_ranks: int = 1, cores: int | None = None, *,
                   setting: str = "[train] threads") -> ThreadChoice:
    """``requested`` (the ``setting`` named, e.g. [train] threads) when given, else OMP_NUM_THREADS when set, else the
    usable cores shared by ``local_ranks`` ranks, less one per rank for the data path when each rank has two or more."""
    ranks = max(1, local_ranks)
    cores = usable_cores() if cores is None else cores
    if requested is not None:
        return ThreadChoice(requested, cores, ranks, setting)
    omp = env_threads()
    if omp is not None:
        return ThreadChoice(omp, cores, ranks, "OMP_NUM_THREADS")
    share = max(1, cores // ranks)
    if share >= 2:
        return ThreadChoice(share - 1, cores, ranks, "default: one core per rank left for data loading")
    return ThreadChoice(1, cores, ranks, "default")
