"""The dask schedulers of ingest and predict: one place that names, opens, sizes and reports them.

A scheduler is ``threads``, ``synchronous``, ``local:N`` (a new local cluster of N worker processes) or a
distributed scheduler's address (``tcp://host:8786``). :func:`scheduler_problem` checks a name with the
standard library alone (the light manifests call it); dask, distributed and tqdm load when a scheduler
opens or a bar starts. A local scheduler's threads follow the usable cores, not the machine's (:func:`local_threads`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from registry_gfm.errors import SchedulerError
from registry_gfm.progress import progress_bar

__all__ = ["ADDRESS_SCHEMES", "CONNECT_TIMEOUT", "GDAL_CACHE_BYTES", "MAX_LOCAL_WORKERS", "LocalThreads", "dask_scheduler",
           "local_threads", "probe_scheduler", "progress_bar", "run_blocks", "scheduler_get", "scheduler_problem"]

#: Most worker processes a ``local:N`` cluster may start (each one a Python process with its own GDAL cache).
MAX_LOCAL_WORKERS: Final = 256
#: GDAL's block cache during a local ingest. Every block is read once, so a large cache only costs:
#: windowed COG reads ran 20% faster with 8-64 MB than with GDAL's default (5% of RAM), and used less memory.
#: ``local:N`` workers get it through their environment; a cluster given by address keeps its own settings.
GDAL_CACHE_BYTES: Final = 64 << 20


#: The address schemes of dask.distributed's comms.
ADDRESS_SCHEMES: Final = ("tcp", "tls", "ucx", "ws", "wss")
#: Seconds to wait for a scheduler given by address to answer before saying so.
CONNECT_TIMEOUT: Final = 10.0


def _address_problem(spec: str) -> str | None:
    """None when ``spec`` reads as ``scheme://host:port``, else what is wrong with it."""
    from urllib.parse import urlsplit

    parts = urlsplit(spec)
    if parts.scheme == "inproc" and parts.netloc:  # a cluster in this very process (LocalCluster(processes=False))
        return None
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ADDRESS_SCHEMES or not parts.hostname or port is None or parts.path not in ("", "/"):
        return (f"{spec!r} is not a scheduler address; expected SCHEME://HOST:PORT with SCHEME one of "
                f"{', '.join(ADDRESS_SCHEMES)}, such as tcp://127.0.0.1:8786")
    return None


def scheduler_problem(spec: str) -> str | None:
    """None when ``spec`` names a scheduler, else what is wrong with it (the caller adds where it came from)."""
    if spec in ("threads", "synchronous"):
        return None
    if "://" in spec:
        return _address_problem(spec)
    match = re.fullmatch(r"local:([+-]?\d+)", spec)
    if match is None:
        return (f"{spec!r} is unknown; expected threads, synchronous, local:N (N worker processes) or a scheduler "
                "address such as tcp://host:8786")
    n = int(match.group(1))
    if not 1 <= n <= MAX_LOCAL_WORKERS:
        return f"{spec!r} asks for {n} worker processes; expected local:N with 1 <= N <= {MAX_LOCAL_WORKERS}"
    return None


@dataclass(frozen=True)
class LocalThreads:
    """The threads of a local scheduler, the usable cores they were chosen from, and why."""

    count: int
    cores: int
    source: str

    def describe(self, what: str) -> str:
        """One line like the trainer's and predict's: ``threads: N <what> thread(s) on C usable core(s) (why)``."""
        return f"threads: {self.count} {what} thread(s) on {self.cores} usable core(s) ({self.source})"


def local_threads(scheduler: str, cores: int | None = None) -> LocalThreads:
    """The reader threads of a local ``threads`` scheduler (1 for ``synchronous``): dask's own ``num_workers``
    setting (``DASK_NUM_WORKERS``) when set, else ``OMP_NUM_THREADS``, else two per usable core (CPU affinity, cgroup
    quota; not the machine's cores, which a pinned or capped job does not have): readers also wait on their reads
    and writes, and an ingest of 4 x 6 x 4096^2 ran 10-16% faster with two per core than with one."""
    from registry_core.cores import env_threads, usable_cores

    cores = usable_cores() if cores is None else cores
    if scheduler == "synchronous":
        return LocalThreads(1, cores, "synchronous")
    import dask.config

    configured = dask.config.get("num_workers", None)
    if isinstance(configured, int) and not isinstance(configured, bool) and configured > 0:
        return LocalThreads(configured, cores, "dask's num_workers setting")
    omp = env_threads()
    if omp is not None:
        return LocalThreads(omp, cores, "OMP_NUM_THREADS")
    return LocalThreads(2 * cores, cores, "default: two per usable core")


@contextlib.contextmanager
def dask_scheduler(spec: str, *, worker_threads: int | None = None) -> Iterator[Any]:
    """``threads``/``synchronous`` -> that name; ``local:N`` -> a Client on a new LocalCluster; else Client(address).

    ``worker_threads``: torch's (OpenMP's) threads in each ``local:N`` worker process (dask's default there is 1).
    """
    if spec in ("threads", "synchronous"):
        yield spec
        return
    from distributed import Client, LocalCluster

    problem = scheduler_problem(spec)
    if problem is not None:
        raise SchedulerError(f"scheduler {problem}")
    if spec.startswith("local:"):
        n = int(spec.split(":", 1)[1])
        env = {"GDAL_CACHEMAX": str(GDAL_CACHE_BYTES >> 20)}
        if worker_threads is not None:
            env.update(OMP_NUM_THREADS=str(worker_threads), MKL_NUM_THREADS=str(worker_threads))
        with (
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                         env=env) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    probe_scheduler(spec)
    with Client(spec, timeout=CONNECT_TIMEOUT) as client:
        yield client


def probe_scheduler(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """SchedulerError unless a dask scheduler answers at ``address`` within ``timeout`` seconds.

    ``Client(address, timeout=...)`` waits forever on a port that accepts connections but does not speak
    dask's protocol (an HTTP server, a dashboard); this asks the scheduler for its identity under a deadline.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            await comm.close()

    try:
        with ThreadPoolExecutor(1) as pool:  # its own event loop, also under a caller's running one (Jupyter)
            reply = pool.submit(asyncio.run, asyncio.wait_for(identity(), timeout)).result()
    except (TimeoutError, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else f"no answer within {timeout:g} s"
        raise SchedulerError(f"scheduler {address}: no dask scheduler answered ({reason}); start one with "
                             "`dask scheduler` or check the address and port") from None
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        raise SchedulerError(f"scheduler {address} answered as {kind or 'something else'}, not a dask scheduler; "
                             "give the scheduler's address (the one `dask scheduler` prints)")


def scheduler_get(scheduler: Any) -> Any:
    """dask's ``get`` function for a local scheduler name (a client stays as it is).

    Given a name, ``dask.compute`` first imports ``distributed`` to look for a default client: 1-2 s per
    ingest process that never uses it.
    """
    if scheduler == "threads":
        import dask.threaded

        return dask.threaded.get
    if scheduler == "synchronous":
        import dask.local

        return dask.local.get_sync
    return scheduler


def run_blocks(writes: Any, scheduler: str, *, progress: bool, desc: str = "predict", num_workers: int | None = None,
               worker_threads: int | None = None) -> int:
    """Compute ``writes`` (a dask array with one chunk per block, each chunk's task writing its block and
    returning a count) and return the sum of the counts, with progress of blocks on stderr when ``progress``.

    ``num_workers``: the ``threads`` scheduler's threads (default: dask's); ``worker_threads``: torch's threads in
    each ``local:N`` worker. A local scheduler counts finished blocks through a dask callback; a distributed one
    through its futures.
    """
    name = writes.name
    with (dask_scheduler(scheduler, worker_threads=worker_threads) as sched,
          progress_bar(writes.npartitions, desc, "block", enabled=progress) as bar):
        if isinstance(sched, str):
            from dask.callbacks import Callback

            reported = 0

            def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
                nonlocal reported
                if isinstance(key, tuple) and key and key[0] == name:
                    reported += 1
                    bar.update(1)

            workers = {"num_workers": num_workers} if sched == "threads" and num_workers else {}
            with Callback(posttask=posttask):
                total = int(writes.compute(scheduler=sched, **workers).sum())
            bar.update(writes.npartitions - reported)  # dask fuses a one-block graph's write into its last task
            return total
        from distributed import as_completed

        total = 0
        for future in as_completed(sched.compute(list(writes.to_delayed().ravel()))):
            total += int(future.result().sum())
            bar.update(1)
        return total
