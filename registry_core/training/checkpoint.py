"""Checkpoints: written atomically, loadable with ``torch.load(weights_only=True)``, keys without wrappers.

A checkpoint is a dict of tensors and plain Python values: model and optimizer state, schedule, the
random states of python, numpy and torch (of every rank), the data position and the step.
"""

from __future__ import annotations

import pickle
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from registry_core._errors import FileFormatError
from registry_core.atomic import atomic_path

__all__ = [
    "FORMAT_VERSION",
    "atomic_torch_save",
    "capture_rng",
    "clean_state_dict",
    "load_checkpoint",
    "restore_rng",
]

#: Bumped when the layout of the checkpoint dict changes.
FORMAT_VERSION = 1
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def clean_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a model state dict with wrapper prefixes removed; error if two keys collapse into one."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        new = key
        while new.startswith(_WRAPPER_PREFIXES):
            new = new.split(".", 1)[1]
        new = new.replace("._orig_mod.", ".")  # a compiled submodule inside the model
        if new in out:
            raise ValueError(f"state dict keys {key!r} and another both clean to {new!r}")
        out[new] = value
    return out


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then rename over ``path``.

    A crash at any point leaves either the old file or the new one, never a torn one; the temp file of
    a failed write is removed (or, after a hard kill, swept by the next successful save).
    """
    with atomic_path(path, sweep=True) as tmp:  # one writer (rank 0): old temp files are a killed run's
        torch.save(obj, tmp)


def _unreadable(path: Path, exc: Exception) -> FileFormatError:
    """The error for a file torch cannot read as a weights-only checkpoint, with the line of torch's that says why."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    why = lines[0]
    for i, line in enumerate(lines):  # torch's reason follows its marker, on the same line or the next
        if "WeightsUnpickler error:" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            why = rest or (lines[i + 1] if i + 1 < len(lines) else why)
            break
    return FileFormatError(f"checkpoint {path} could not be read as a trainer checkpoint ({_printable(why)}); expected "
                           "a checkpoint the trainer wrote, not a truncated or damaged file")


def _printable(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (torch bolds parts of its messages)."""
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]|[\x00-\x1f\x7f]", "", text)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by the trainer; tensors and plain values only (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found is None:
            raise _unreadable(path, exc) from exc
        raise FileFormatError(f"checkpoint {path} was refused: it names the Python object {_printable(found.group(1))}, "
                              "which only an unsafe load would build (a pickle can run code that way); a trainer "
                              "checkpoint holds tensors and plain values only") from exc
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_VERSION:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise FileFormatError(f"checkpoint {path} has format {got!r}; expected trainer checkpoint format {FORMAT_VERSION}")
    return ckpt


def capture_rng() -> dict[str, Any]:
    """This process's random states (python, numpy, torch CPU and CUDA) as tensors and plain values."""
    version, py_state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": [version, list(py_state), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Put back the random states saved by :func:`capture_rng`."""
    version, py_state, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in py_state), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((str(kind), keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
