"""Start-up cost of browsing: `python -m registry_core list` vs `import torch` vs an empty interpreter.

Runs the three commands interleaved (so machine noise hits all alike) and prints medians and ratios.
Goal (issue 2): list <= 0.15 x import torch.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "list": [sys.executable, "-m", "registry_core", "list"],
    "import torch": [sys.executable, "-c", "import torch"],
    "pass": [sys.executable, "-c", "pass"],
}


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    for cmd in COMMANDS.values():  # warm the OS file cache once
        timed(cmd)
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(args.repeats):
        for name, cmd in COMMANDS.items():
            times[name].append(timed(cmd))
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, value in med.items():
        print(f"{name:14} median {value * 1000:8.1f} ms  (n={args.repeats})")
    ratio = med["list"] / med["import torch"]
    print(f"list / import torch = {ratio:.3f}   (goal <= 0.15: {'met' if ratio <= 0.15 else 'NOT met'})")
    print(f"list / pass         = {med['list'] / med['pass']:.2f}")


if __name__ == "__main__":
    main()
