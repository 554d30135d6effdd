"""A run folder: what marks one, and the rule that ``run`` never silently replaces a finished or partial run.

A folder is a run folder when it holds any file a run writes (:data:`RUN_MARKERS`); an empty or
unrelated folder is not one and may be trained into. Imports nothing heavy.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

from registry_core._errors import OutputPathError

__all__ = ["RUN_MARKERS", "RunFolderError", "prepare_run_dir", "run_markers"]

#: Entries a run writes into its folder (``Pipeline.fit`` and ``Pipeline.save``).
RUN_MARKERS: Final = ("pipeline.toml", "pipeline.lock.json", "metrics.jsonl", "checkpoints", "model.safetensors",
                      "summary.json")


class RunFolderError(OutputPathError):
    """``run`` was pointed at a folder that holds another run (or cannot hold one)."""


def run_markers(out: Path) -> list[str]:
    """The run files present in ``out`` (empty when ``out`` is missing, empty or unrelated)."""
    return [name for name in RUN_MARKERS if (out / name).exists()] if out.is_dir() else []


def prepare_run_dir(out: Path, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse to train into a run folder unless resuming it, or remove it first with ``overwrite``.

    ``overwrite`` keeps nothing: the whole folder goes (never the working folder or one above it).
    """
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"run folder {out} is a file; give --out a folder")
    found = run_markers(out)
    if not found or resume:
        return
    if not overwrite:
        raise RunFolderError(
            f"{out} already holds a run ({', '.join(found)}); continue it with --resume --out {out}, "
            f"or start over with --overwrite (removes everything in {out})"
        )
    here = Path.cwd().resolve()
    target = out.resolve()
    if target == here or target in here.parents:
        raise RunFolderError(f"--overwrite would remove {out}, which holds the working folder; give --out a subfolder")
    shutil.rmtree(target)
