"""What a run reports: a tqdm bar (on a TTY) or plain log lines, and ``metrics.jsonl``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from registry_core._errors import FileFormatError
from registry_core.atomic import write_text

__all__ = ["MetricsLog", "ProgressReporter"]


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl``; only the main rank writes."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def append(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(clean) + "\n")
            fh.flush()

    def truncate_after(self, step: int) -> None:
        """Drop records of steps after ``step`` (rerun after a resume) and any torn last line, atomically."""
        if not self.enabled or not self.path.exists():
            return
        kept = []
        for number, raw in enumerate(self.path.read_bytes().splitlines(), start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise FileFormatError(f"{self.path} line {number} is not UTF-8 text; expected the JSON lines a run "
                                      "writes (move the file away to start a new log)") from None
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the half-written line of a killed run
            if isinstance(record, dict) and int(record.get("step", 0)) <= step:
                kept.append(line)
        write_text(self.path, "".join(line + "\n" for line in kept))


class ProgressReporter:
    """A tqdm bar with step, loss, throughput and ETA when stderr is a TTY; plain lines every log step."""

    def __init__(self, total: int, initial: int, units: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.units = units
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = (
            tqdm(total=total, initial=initial, desc="train", unit="step", file=self.stream, dynamic_ncols=True)
            if self.tty
            else None
        )
        self.total = total

    def step(self, step: int, loss: float, units_per_s: float | None) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            rate = f"{units_per_s:,.0f}" if units_per_s is not None else "-"
            self.bar.set_postfix_str(f"loss={loss:.4f} {self.units}/s={rate}", refresh=False)

    def log(self, record: dict[str, Any], eta_s: float | None) -> None:
        """One plain line: the bar shows it on a TTY; otherwise a log line for files and CI."""
        if not self.enabled or self.bar is not None:
            return
        parts = [f"step {record['step']}/{self.total}"]
        for key in ("loss", "val_loss", "lr", "grad_norm"):
            if record.get(key) is not None:
                parts.append(f"{key} {record[key]:.4g}")
        if record.get("units_per_s") is not None:
            parts.append(f"{self.units}/s {record['units_per_s']:,.0f}")
        if record.get("mfu") is not None:
            parts.append(f"mfu {record['mfu']:.1%}")
        if eta_s is not None:
            parts.append(f"eta {_clock(eta_s)}")
        print("train: " + " | ".join(parts), file=self.stream, flush=True)

    def write(self, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _clock(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
