"""Installs the toy plugin (tests/pipeline/toy_plugin.py + toy_parts.py) as a throw-away distribution."""

from __future__ import annotations

import pytest

from registry_core import Registry


@pytest.fixture
def toy_registry(toy_plugin: None) -> Registry:
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
