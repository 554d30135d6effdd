"""Shared pieces of the trainer tests: the tiny task module, loaded by path (tests are not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).parent
TINY_SCRIPT = HERE / "trainer_tiny.py"


def _load_tiny() -> ModuleType:
    name = "registry_core_tests_trainer_tiny"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TINY_SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def tiny() -> ModuleType:
    """The tiny regression task: ``TinyRegression``, ``TinyModel``, ``make_config``."""
    return _load_tiny()
