"""Installs the toy plugin (tests/pipeline/toy_plugin.py + toy_parts.py) as a throw-away distribution."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest

from registry_core import Registry

HERE = Path(__file__).parent


@pytest.fixture
def toy_registry(site_dir: Path) -> Registry:
    shutil.copy(HERE / "toy_plugin.py", site_dir / "rc_toy_plugin.py")
    shutil.copy(HERE / "toy_parts.py", site_dir / "rc_toy_parts.py")
    info = site_dir / "rc_toy-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rc-toy\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text("[registry_core]\ntoy = rc_toy_plugin\n")
    importlib.invalidate_caches()
    return Registry(use_env=False)


@pytest.fixture
def good() -> dict:
    """A valid toy pipeline config (a fresh copy per test)."""
    return {
        "name": "toy",
        "data": {"use": "toy-text", "seq_len": 8},
        "tokenizer": {"use": "toy-tok", "vocab_size": 16},
        "positional": {"use": "toy-learned"},
        "backbone": {"use": "toy-decoder", "embed_dim": 32},
        "objective": {"use": "toy-next"},
        "evaluators": [{"use": "toy-loss"}],
        "train": {"steps": 30, "batch_size": 8, "lr": 0.01, "warmup_steps": 2, "log_every": 5, "checkpoint_every": 10},
    }
