"""Pipeline locks: which provider and version built each slot, and the sha256 of every file in use."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from registry_core._contracts import ComposedSlot
from registry_core._errors import RegistryCoreError
from registry_core.atomic import file_inside, sha256_file

__all__ = ["LockMismatch", "check_lock", "expand_files", "make_lock", "read_lock", "sha256_file", "verify_files"]


class LockMismatch(RegistryCoreError, RuntimeError):
    """An installed provider differs from the one recorded in a pipeline's lock."""


def expand_files(slot: str, paths: Iterable[Path]) -> dict[str, Path]:
    """``slot:name`` -> file, for files and for every file inside listed folders."""
    out: dict[str, Path] = {}
    for p in paths:
        if p.is_file():
            out[f"{slot}:{p.name}"] = p.resolve()
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    out[f"{slot}:{f.relative_to(p)}"] = f.resolve()
    return out


def make_lock(slots: Iterable[ComposedSlot], files: Mapping[str, Path], root: Path | None = None,
              data: Mapping[str, Any] | None = None, hub: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every slot's qualified id, provider distribution and version, the files' hashes, (``data``) the data
    source's fingerprint: what the run trained on, which ``--resume`` checks, and (``hub``) per slot the hub repo,
    revision, commit and file hashes it pulled.

    File paths are written relative to ``root`` when they lie inside it (a saved pipeline's folder).
    """

    def shown(p: Path) -> str:
        return str(p.relative_to(root)) if root is not None and p.is_relative_to(root) else str(p)

    return {
        "components": [
            {"slot": s.slot, "kind": s.kind, "id": s.spec.id, "target": s.spec.target,
             "distribution": s.spec.distribution, "version": s.spec.version}
            for s in slots
        ],
        "files": {name: {"path": shown(p), "sha256": sha256_file(p)} for name, p in files.items()},
        **({"data": dict(data)} if data is not None else {}),
        **({"hub": dict(hub)} if hub else {}),
    }


def check_lock(lock: Mapping[str, Any], strict: bool = False) -> list[str]:
    """Compare a recorded lock with what is installed now; warn (or raise LockMismatch when strict)."""
    import importlib.metadata as md  # deferred: costs start-up time, and only loading a saved pipeline needs it

    problems = []
    for entry in lock.get("components", []):
        dist, version = entry.get("distribution"), entry.get("version")
        if not dist:
            continue
        try:
            installed = md.version(dist)
        except md.PackageNotFoundError:
            installed = None
        if installed != version:
            problems.append(f"{entry.get('slot')} `{entry.get('id')}` was locked with {dist} {version} but "
                            f"{'it is not installed' if installed is None else f'{installed} is installed'}")
    for problem in problems:
        if strict:
            raise LockMismatch(problem)
        warnings.warn(problem, stacklevel=3)
    return problems


def read_lock(path: Path) -> dict[str, Any]:
    """A lock file's contents; an unreadable one is a LockMismatch naming the file."""
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LockMismatch(f"{path} is not a readable pipeline lock: {exc}") from None
    if not isinstance(lock, dict):
        raise LockMismatch(f"{path} is not a pipeline lock: expected a JSON object")
    return lock


def verify_files(lock: Mapping[str, Any], folder: Path, lock_path: Path) -> None:
    """Every file the lock records exists (relative paths under ``folder``, never out of it) and has its recorded
    sha256. Absolute paths are files the run used from elsewhere (its data, another run's weights): only hashed."""
    for name, entry in lock.get("files", {}).items():
        p = Path(entry["path"])
        p = p if p.is_absolute() else file_inside(folder, p)
        if not p.is_file():
            raise LockMismatch(f"{name} ({p}) recorded in {lock_path} is missing")
        if sha256_file(p) != entry["sha256"]:
            raise LockMismatch(f"{name} ({p}) has changed since the pipeline was saved: its sha256 differs "
                               f"from the one in {lock_path}")
