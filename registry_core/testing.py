"""Helpers a plugin's own tests call to check its specs (the plugin author kit).

    from registry_core.testing import assert_plugin_ok

    def test_my_plugin_specs():
        assert_plugin_ok("myplugin")          # entry-point name

Checks: the plugin loads, every target imports, every config schema resolves and its defaults validate,
importing the plugin (and its config modules) pulls in no heavy module, its CLI commands' code imports,
and each component whose options all have defaults is built with them and has every member of its kind's
interface (a factory that declines its defaults with a ValueError, LookupError or OSError, e.g. a width
left for wiring, is skipped).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from registry_core._errors import ComponentLoadError
from registry_core._loopback_hub import LoopbackHub
from registry_core._members import interface_of, missing_members
from registry_core._registry import Registry
from registry_core._schema import resolve_config_class, validate_options
from registry_core._spec import ComponentSpec
from registry_core._targets import import_target

__all__ = ["HEAVY_MODULES", "LoopbackHub", "assert_plugin_ok", "check_plugin", "heavy_imports", "hub_environment",
           "one_error_line", "run_cli", "sigint_as_in_a_terminal"]

def hub_environment(endpoint: str, home: Path) -> dict[str, str | None]:
    """The environment for a test that pulls from a hub at ``endpoint`` (a :class:`LoopbackHub`) into the cache
    under ``home``: online, no token of whoever runs the tests, no telemetry; None: unset the variable."""
    return {"HF_ENDPOINT": endpoint, "HF_HOME": str(home), "HF_HUB_CACHE": None, "HF_HUB_OFFLINE": None,
            "HF_TOKEN": None, "HUGGING_FACE_HUB_TOKEN": None, "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


#: Modules that listing, showing and importing a plugin must never pull in.
HEAVY_MODULES: Final = ("torch", "numpy", "xarray", "rasterio", "dask", "zarr", "tokenizers", "pandas", "scipy")


def heavy_imports(modules: list[str], heavy: tuple[str, ...] = HEAVY_MODULES) -> list[str]:
    """Heavy modules loaded by importing ``modules`` in a fresh interpreter."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(h for h in {list(heavy)!r} if h in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise AssertionError(f"importing {modules} failed:\n{out.stderr}")
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def run_cli(*args: str, cwd: str | os.PathLike[str] | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m registry_core ARGS`` in a fresh interpreter (no ``REGISTRY_CORE_DEBUG``; ``env`` added)."""
    environ = {k: v for k, v in os.environ.items() if k != "REGISTRY_CORE_DEBUG"}
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True, cwd=cwd,
                          check=False, env={**environ, **(env or {})})


def one_error_line(out: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The single ``error: ...`` line a failed command printed, asserting its exit code and that no traceback shows."""
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


@contextlib.contextmanager
def sigint_as_in_a_terminal() -> Iterator[None]:
    """Processes started inside get SIGINT's default action, as a terminal's foreground job has, even when this one
    was started with SIGINT ignored (a background job of a non-interactive shell, some CI runners): an ignored
    signal stays ignored across exec, and Python then installs no KeyboardInterrupt handler at all. For tests that
    send a command Ctrl-C."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a Python handler is reset to the default by exec
    try:
        yield
    finally:
        if before is not None:
            signal.signal(signal.SIGINT, before)


def _check_spec(spec: ComponentSpec) -> list[str]:
    problems = []
    if not spec.summary.strip():
        problems.append(f"{spec.kind} {spec.id}: empty summary")
    try:
        import_target(spec)
    except ComponentLoadError as exc:
        problems.append(str(exc))
    try:
        cls = resolve_config_class(spec)
    except Exception as exc:
        problems.append(f"{spec.kind} {spec.id}: config {spec.config!r} does not resolve: {exc}")
        return problems
    if cls is not None:
        # Every default must pass its own field's checks; required fields (no default) are fine.
        defaults = {}
        for f in dataclasses.fields(cls):
            if f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()
            elif f.default is not dataclasses.MISSING and f.default is not None:
                defaults[f.name] = f.default
        if spec.card is not None:  # a card's defaults are its loader's options preset to the card's repo
            defaults.update(spec.card.loader_options())
        _, issues = validate_options(cls, defaults, f"{spec.kind} {spec.id}")
        issues = [i for i in issues if i.key in defaults or i.key is None]
        problems += [f"{spec.kind} {spec.id}: default config is invalid: {i}" for i in issues]
        for f in dataclasses.fields(cls):
            if not f.metadata.get("help"):
                problems.append(f"{spec.kind} {spec.id}: config field {f.name!r} has no help text (use registry_core.option)")
    return problems


def _defaults_only(cls: type | None) -> bool:
    """Whether every option of the schema has a default (so the component can be built as it is)."""
    return cls is None or all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(cls) if f.init
    )


@contextlib.contextmanager
def _meta_device() -> Iterator[None]:
    """Build torch modules on the meta device when torch is loaded: shapes without memory or init cost,
    which keeps a 100M-parameter default backbone cheap to check."""
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    with torch.device("meta"):
        yield


def _check_build(spec: ComponentSpec, registry: Registry) -> list[str]:
    """Build ``spec`` with its defaults and check the result against its kind's interface."""
    kind = registry.kinds().get(spec.kind)
    proto = interface_of(kind) if kind is not None else None
    try:
        with _meta_device():
            component = registry.build(spec.kind, spec.id)
    except (ValueError, LookupError, OSError):
        return []  # declines its defaults (needs wiring or files): nothing to check without a pipeline
    except Exception as exc:
        return [f"{spec.kind} {spec.id}: building it with its defaults failed: {type(exc).__name__}: {exc}"]
    if proto is None:
        return []
    missing = missing_members(component, proto)
    if not missing:
        return []
    return [f"{spec.kind} {spec.id}: built with its defaults, its {type(component).__name__} lacks "
            f"{', '.join(repr(m) for m in missing)}, which every {spec.kind} has ({kind.interface if kind else ''})"]


def check_plugin(
    name: str, registry: Registry | None = None, *, check_imports: bool = True, build: bool = True
) -> list[str]:
    """Every problem found with plugin ``name`` (entry-point name), as sentences; [] when it is fine."""
    reg = registry or Registry()
    reg.verify_commands()  # a plugin whose command code does not import is broken, as `plugins` reports it
    infos = {p.name: p for p in reg.plugins()}
    if name not in infos:
        return [f"plugin {name!r} is not installed (known: {', '.join(infos) or 'none'})"]
    info = infos[name]
    if info.status != "loaded":
        return [f"plugin {name!r} is {info.status}: {info.error}"]
    specs = [s for s in reg.list() if s.plugin == name]
    problems: list[str] = []
    for spec in specs:
        found = _check_spec(spec)
        problems += found
        # A card is not built here: building it pulls its files from the hub.
        if build and not found and spec.card is None and _defaults_only(resolve_config_class(spec)):
            problems += _check_build(spec, reg)
    if check_imports:
        light = [info.module.partition(":")[0]]
        light += sorted({s.config.partition(":")[0] for s in specs if isinstance(s.config, str)})
        light += sorted({s.config.__module__ for s in specs if isinstance(s.config, type)})
        heavy = heavy_imports(light)
        if heavy:
            problems.append(f"importing plugin {name!r} and its config modules ({', '.join(light)}) loads heavy "
                            f"modules: {', '.join(heavy)}; import them inside the component targets instead")
    return problems


def assert_plugin_ok(name: str, registry: Registry | None = None, *, build: bool = True) -> None:
    """Raise AssertionError listing every problem :func:`check_plugin` finds (``build=False``: no builds)."""
    problems = check_plugin(name, registry, build=build)
    if problems:
        raise AssertionError(f"plugin {name!r} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
