"""A run folder: what marks one, and the rule that ``run`` never silently replaces a finished or partial run.

A folder is a run folder when it holds any file a run writes (:data:`RUN_MARKERS`); an empty or
unrelated folder is not one and may be trained into. A folder a run creates carries the project's output marker,
and only such a folder is ever removed (``--overwrite``). Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final

from registry_core._errors import OutputPathError
from registry_core.atomic import OUTPUT_MARKER, mark_output, remove_output

__all__ = ["RUN_KIND", "RUN_MARKERS", "RunFolderError", "discard_unused_run_dir", "mark_run_dir", "prepare_run_dir", "run_markers"]

#: The kind of output marker a run folder carries (``atomic.mark_output``).
RUN_KIND: Final = "run"

#: Entries a run writes into its folder (``Pipeline.fit`` and ``Pipeline.save``).
RUN_MARKERS: Final = ("pipeline.toml", "pipeline.lock.json", "metrics.jsonl", "checkpoints", "model.safetensors",
                      "summary.json")


class RunFolderError(OutputPathError):
    """``run`` was pointed at a folder that holds another run (or cannot hold one)."""


def run_markers(out: Path) -> list[str]:
    """The run files present in ``out`` (empty when ``out`` is missing, empty or unrelated)."""
    return [name for name in RUN_MARKERS if (out / name).exists()] if out.is_dir() else []


def prepare_run_dir(out: Path, resume: bool = False, overwrite: bool = False, inputs: Iterable[Path] = ()) -> bool:
    """Refuse to train into a run folder unless resuming it, or remove it first with ``overwrite``; True when the
    folder is missing or empty now (the run then marks it as its own once the pipeline has built: bad input
    leaves nothing behind).

    ``overwrite`` removes only a run folder this project wrote (its marker says so), never a link, the home or
    working folder or one above it, or a folder holding one of ``inputs`` (``atomic.remove_output``).
    """
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"run folder {out} is a file; give --out a folder")
    found = run_markers(out)
    if found and not resume:
        if not overwrite:
            raise RunFolderError(
                f"{out} already holds a run ({', '.join(found)}); continue it with --resume --out {out}, "
                f"or start over with --overwrite (removes everything in {out})"
            )
        try:
            remove_output(out, RUN_KIND, inputs=inputs)
        except OutputPathError as exc:
            raise RunFolderError(f"--overwrite refused: {exc}") from None
    return not out.exists() or not any(out.iterdir())


def discard_unused_run_dir(out: Path) -> None:
    """Remove a run folder this run marked but then wrote nothing into (it failed before training)."""
    if out.is_dir() and not out.is_symlink() and [p.name for p in out.iterdir()] == [OUTPUT_MARKER]:
        remove_output(out, RUN_KIND)


def mark_run_dir(out: Path) -> None:
    """Create the run folder (when missing) and mark it as a run folder registry-core wrote."""
    out.mkdir(parents=True, exist_ok=True)
    mark_output(out, RUN_KIND)
