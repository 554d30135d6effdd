"""Shared timing helper of the benchmarks: wall-clock seconds per call, synchronising CUDA around the clock."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Seconds per call of ``fn``, averaged over ``repeats`` calls (queued CUDA work is waited for)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats
