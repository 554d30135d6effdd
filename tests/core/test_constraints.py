"""constraints.txt (written by ``make lock``) pins every distribution the three pyproject.toml files require."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECTS = (ROOT / "pyproject.toml", ROOT / "plugins/llm/pyproject.toml", ROOT / "plugins/gfm/pyproject.toml")
OURS = {"registry-core", "registry-llm", "registry-gfm"}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normal(name: str) -> str:
    """PEP 503 normal form: case and runs of ``-_.`` do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _required() -> dict[str, str]:
    """Normalised name -> the pyproject.toml that requires it (dependencies and every extra)."""
    names: dict[str, str] = {}
    for path in PYPROJECTS:
        project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
        requirements = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            requirements += extra
        for requirement in requirements:
            match = _NAME.match(requirement)
            assert match, f"{path}: cannot read a distribution name from {requirement!r}"
            names.setdefault(_normal(match.group(1)), str(path.relative_to(ROOT)))
    return names


def _pins() -> dict[str, str]:
    """Normalised name -> pinned version of every ``name==version`` line of constraints.txt."""
    pins: dict[str, str] = {}
    for number, line in enumerate((ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"constraints.txt line {number}: {line!r} is not an exact pin NAME==VERSION"
        pins[_normal(name)] = version
    return pins


def test_every_required_distribution_is_pinned() -> None:
    pins = _pins()
    missing = sorted(f"{name} (from {where})" for name, where in _required().items()
                     if name not in OURS and name not in pins)
    assert not missing, f"constraints.txt lacks {', '.join(missing)}; run `make lock` after installing them"


def test_our_packages_are_not_pinned_and_torch_matches_the_setup_pin() -> None:
    pins = _pins()
    assert not OURS & set(pins), "constraints.txt must not pin our own editable packages"
    assert pins.get("torch") == "2.13.0", "constraints.txt must pin torch==2.13.0 (no local build tag), as make setup"
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text(encoding="utf-8")
