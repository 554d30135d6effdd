"""The cores this process may use, and the threads its job was given: torch-free, so the ingest can ask too.

``os.cpu_count()`` counts the machine's cores, not this process's: a job pinned to a few of them (CPU affinity)
or given a cgroup CPU quota (a container's ``--cpus``) that sized its thread pools by it would run many threads
per core, each stalling the others.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["CGROUP_CPU_MAX", "env_threads", "usable_cores"]

#: cgroup v2's CPU quota file: ``"max 100000"`` (no limit) or ``"<quota> <period>"`` in microseconds.
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """Cores this process may run on: its CPU affinity, lowered to a cgroup CPU quota when one is set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity call on this platform
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def env_threads() -> int | None:
    """``OMP_NUM_THREADS`` when it holds a positive whole number, else None: the threads a job was given."""
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(omp) if omp.isdigit() and int(omp) > 0 else None
