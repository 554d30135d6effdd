"""Resuming a run: the run folder's own config, and a refusal when the model no longer fits its checkpoint.

Options are compared between the saved and the new config; the checkpoint's tensor shapes decide whether a
change matters (``dropout`` may change on resume, ``embed_dim`` may not), and the refusal names the changed
keys with both values.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry_core._errors import RegistryCoreError

__all__ = ["ResumeMismatch", "check_resume_data", "check_resume_fits", "check_resume_hub", "model_changes"]


class ResumeMismatch(RegistryCoreError, ValueError):
    """The model composed for ``--resume`` has other tensor shapes than the run's checkpoint."""


def _slot_tables(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in config.items() if isinstance(v, Mapping) and k not in ("data", "train")}


def model_changes(saved: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(slot.key, saved value, new value)`` for every option of a model slot (all but data, train) that differs."""
    old_tables, new_tables = _slot_tables(saved), _slot_tables(new)
    changes = []
    for slot in sorted(set(old_tables) | set(new_tables)):
        old, cur = old_tables.get(slot, {}), new_tables.get(slot, {})
        for key in sorted(set(old) | set(cur)):
            if key != "path" and old.get(key) != cur.get(key):
                changes.append((f"{slot}.{key}", old.get(key), cur.get(key)))
    return changes


def _shape_mismatch(saved: Mapping[str, Any], model: Mapping[str, Any]) -> str | None:
    """The first tensor whose shape (or presence) differs between the checkpoint and the model, in words."""
    for name in sorted(set(saved) | set(model)):
        if name not in model:
            return f"the checkpoint's {name} has no place in the model built now"
        if name not in saved:
            return f"the model built now has {name}, which the checkpoint lacks"
        a, b = tuple(saved[name].shape), tuple(model[name].shape)
        if a != b:
            return f"the checkpoint's {name} has shape {list(a)}, the model built now {list(b)}"
    return None


def check_resume_data(out: Path, now: Mapping[str, Any] | None) -> None:
    """Raise ResumeMismatch naming both when the run in ``out`` trained on other data than ``now`` (the data
    fingerprints in its lock; ``source`` names them and is not compared, so a moved datacube still resumes)."""
    from registry_core.pipeline._lock import LockMismatch, read_lock
    from registry_core.pipeline._persist import LOCK_FILE

    try:
        lock = read_lock(out / LOCK_FILE)
    except LockMismatch:
        return  # no lock (or an unreadable one, which loading the run reports): nothing recorded to compare
    before = lock.get("data")
    if not isinstance(before, Mapping) or now is None:
        return
    differ = sorted(k for k in set(before) | set(now) if k != "source" and before.get(k) != now.get(k))
    if differ:
        raise ResumeMismatch(f"cannot resume {out}: it trained on {before.get('source', 'other data')}, this run reads "
                             f"{now.get('source', 'other data')}, and they differ ({', '.join(differ)}); resume with "
                             "the run's own data, or start over with --overwrite")


def check_resume_hub(out: Path, now: Mapping[str, Any]) -> None:
    """Raise ResumeMismatch when a slot of the run in ``out`` pulled other hub files than this run just did (its
    lock's ``hub`` pins: repo, commit, each file's sha256): the branch moved, or the cache holds other bytes."""
    from registry_core.pipeline._lock import LockMismatch, read_lock
    from registry_core.pipeline._persist import LOCK_FILE

    try:
        lock = read_lock(out / LOCK_FILE)
    except LockMismatch:
        return
    before = lock.get("hub")
    if not isinstance(before, Mapping):
        return
    for slot, pinned in before.items():
        got = now.get(slot)
        if not isinstance(pinned, Mapping) or got is None:
            continue
        if (pinned.get("repo"), pinned.get("commit"), pinned.get("files")) != (got["repo"], got["commit"], got["files"]):
            raise ResumeMismatch(
                f"cannot resume {out}: its {slot} came from {pinned.get('repo')} at commit {pinned.get('commit')}, this "
                f"run pulled {got['repo']} at commit {got['commit']} ({got['revision']!r} moved, or the files differ); "
                f"resume with {slot}.revision = \"{pinned.get('commit')}\", or start over with --overwrite")


def _read_checkpoint(checkpoint: Path) -> Mapping[str, Any] | None:
    """The checkpoint memory-mapped (only tensor headers are read); None when missing or unreadable (the
    trainer's own load then reports it, with its path)."""
    if not checkpoint.is_file():
        return None
    import torch

    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    return ckpt if isinstance(ckpt, Mapping) else None


def check_resume_fits(checkpoint: Path, model: Any, changes: list[tuple[str, Any, Any]], steps: int | None = None) -> None:
    """Raise ResumeMismatch naming the changed keys when ``model`` cannot take the checkpoint's weights, and when
    the checkpoint is already at ``steps`` or beyond (resuming would do nothing).
    """
    ckpt = _read_checkpoint(checkpoint)
    if ckpt is None:
        return
    step = ckpt.get("step")
    if steps is not None and isinstance(step, int) and step >= steps:
        raise ResumeMismatch(f"cannot resume from {checkpoint}: the run is already at step {step} and train.steps "
                             f"is {steps}, so there is nothing to train; give more steps (--steps {step + 1} or "
                             "more)")
    saved = ckpt.get("model")
    if not isinstance(saved, Mapping):
        return
    from registry_core.training.checkpoint import clean_state_dict

    problem = _shape_mismatch(saved, clean_state_dict(model.state_dict()))
    if problem is None:
        return
    changed = "; ".join(f"{key} was {old!r}, now {new!r}" for key, old, new in changes)
    why = f"the overrides change the model's shape ({changed})" if changed else "the model's shape changed"
    raise ResumeMismatch(f"cannot resume from {checkpoint}: {why}: {problem}; resume with the run's own values, "
                         "or start over with --overwrite")
