"""Checkpoint files: atomic replacement, clean keys, random states that survive weights_only loading."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from registry_core.training import atomic_torch_save, clean_state_dict, load_checkpoint
from registry_core.training.checkpoint import FORMAT_VERSION, capture_rng, restore_rng


class Unpicklable:
    def __reduce__(self) -> tuple[object, ...]:
        raise RuntimeError("disk full (simulated by a value that cannot be serialised)")


def _ckpt(step: int) -> dict[str, object]:
    return {"format": FORMAT_VERSION, "step": step, "model": {"w": torch.full((64, 64), float(step))}}


def test_failed_write_leaves_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.pt"
    atomic_torch_save(_ckpt(1), path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_torch_save({**_ckpt(2), "bad": Unpicklable()}, path)
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_process_killed_mid_write_leaves_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    atomic_torch_save(_ckpt(1), path)
    # The child writes the new checkpoint's bytes, then dies by SIGKILL where it would fsync: a real crash.
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        from registry_core.training import atomic_torch_save
        os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
        atomic_torch_save({{"format": 1, "step": 2, "model": {{"w": torch.zeros(64, 64)}}}}, {str(path)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -9
    leftovers = [p for p in tmp_path.iterdir() if p.name != "last.pt"]
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0  # the torn temp file
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 1 and torch.equal(ckpt["model"]["w"], torch.ones(64, 64))
    atomic_torch_save(_ckpt(3), path)  # the next good save sweeps the leftover
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]


def test_clean_keys_from_wrappers() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3))
    plain = model.state_dict()
    compiled: nn.Module = torch.compile(model, backend="eager")  # type: ignore[assignment]
    wrapped = nn.DataParallel(compiled)  # "module._orig_mod.0.weight"
    assert next(iter(wrapped.state_dict())).startswith("module._orig_mod.")
    assert list(clean_state_dict(wrapped.state_dict())) == list(plain)
    inner_layer: nn.Module = torch.compile(nn.Linear(2, 2), backend="eager")  # type: ignore[assignment]
    inner = nn.Sequential(inner_layer)  # "0._orig_mod.weight"
    assert list(clean_state_dict(inner.state_dict())) == ["0.weight", "0.bias"]
    with pytest.raises(ValueError, match="both clean to 'weight'"):
        clean_state_dict({"weight": 1, "module.weight": 2})


def test_random_states_round_trip_through_weights_only_load(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.random()
    np.random.normal()  # leaves a cached gaussian in numpy's legacy state
    state = capture_rng()
    atomic_torch_save({"format": FORMAT_VERSION, "rng": [state]}, tmp_path / "rng.pt")
    expect = (random.random(), np.random.normal(), torch.rand(3))
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    restore_rng(load_checkpoint(tmp_path / "rng.pt")["rng"][0])
    got = (random.random(), np.random.normal(), torch.rand(3))
    assert got[0] == expect[0] and got[1] == expect[1] and torch.equal(got[2], expect[2])


def test_load_rejects_missing_foreign_and_unsafe_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape("nope.pt does not exist")):
        load_checkpoint(tmp_path / "nope.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=re.escape("garbage.pt could not be read")):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match=re.escape("foreign.pt has format None")):
        load_checkpoint(foreign)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": FORMAT_VERSION, "obj": Path("x")}, unsafe)  # an arbitrary class: never unpickled
    with pytest.raises(ValueError, match=re.escape("unsafe.pt was refused: it names the Python object pathlib.PosixPath")):
        load_checkpoint(unsafe)
