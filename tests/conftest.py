"""Shared fixtures: throw-away distributions that register plugins through real entry points."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class FakeDist:
    """A distribution written as ``*.dist-info`` + module on a sys.path entry."""

    site: Path
    name: str
    module: str
    entry_point: str


@pytest.fixture
def site_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path (and PYTHONPATH, for subprocesses) holding throw-away distributions."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    # keep what PYTHONPATH already names (a worktree's sources ahead of the editable installs)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p))
    importlib.invalidate_caches()
    yield site
    importlib.invalidate_caches()


@pytest.fixture
def make_dist(site_dir: Path) -> Callable[..., FakeDist]:
    """Write a distribution whose entry point ``entry_point`` in group registry_core loads ``source``.

    The module gets a unique name per call, so tests stay independent inside one interpreter.
    """

    def make(entry_point: str, source: str, dist_name: str | None = None, version: str = "1.2.3") -> FakeDist:
        module = f"rc_test_{entry_point.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        dist_name = dist_name or f"fake-{entry_point}"
        (site_dir / f"{module}.py").write_text(textwrap.dedent(source))
        info = site_dir / f"{dist_name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[registry_core]\n{entry_point} = {module}\n")
        importlib.invalidate_caches()
        return FakeDist(site_dir, dist_name, module, entry_point)

    return make


@pytest.fixture
def torch_one_thread() -> Iterator[None]:
    """One torch intra-op thread: tiny models gain nothing from more, and they stall badly on a busy 2-core machine.

    Test modules opt in with ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``; torch is imported
    here, lazily, so test directories that never use it do not pay for the import.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cli_modules(tmp_path: Path) -> Callable[..., list[str]]:
    """Run ``python -m registry_core *args`` in a fresh interpreter; the names of the modules it loaded."""

    def run(*args: str) -> list[str]:
        code = (
            "import runpy, sys, json, contextlib, io\n"
            f"sys.argv = ['registry_core', *{list(args)!r}]\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        runpy.run_module('registry_core', run_name='__main__')\n"
            "    except SystemExit:\n        pass\n"
            "print(json.dumps(sorted(sys.modules)))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
        loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
        return loaded

    return run
