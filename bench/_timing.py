"""Shared timing helper of the benchmarks: wall-clock seconds per call, synchronising CUDA around the clock."""

from __future__ import annotations

import argparse
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


def add_round_options(parser: argparse.ArgumentParser, *, warmup: int = 1, rounds: int = 5) -> None:
    """The options of a benchmark timed in alternating rounds: rounds, repeats, warmup, device, threads."""
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--repeats", type=int, default=1, help="calls per timed round")
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")


def parse_round_options(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line and apply ``--threads``."""
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args
