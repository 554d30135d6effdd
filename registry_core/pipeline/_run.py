"""The whole run workflow behind ``Pipeline.run`` and the CLI's ``run``: prepare the run folder, build (rank 0
first under torchrun), check a resumed model against its checkpoint, train, evaluate, save, write ``summary.json``.

Progress and notes go to stderr (the trainer's lines, a short warm-up, a data source without a validation
split); the result comes back as a :class:`RunResult`, which the CLI prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from registry_core._errors import UsageError
from registry_core.atomic import check_output_dir, write_json, writer_lock

__all__ = ["SUMMARY_FILE", "RunResult", "is_main_rank", "run_pipeline", "short_warmup_warning"]

#: What a finished run writes last: its step, losses and evaluator metrics (``report`` reads it).
SUMMARY_FILE: Final = "summary.json"


@dataclass(frozen=True)
class RunResult:
    """What one run did: where it wrote, its last step and loss, validation losses and evaluator metrics.

    On the other ranks of a distributed run ``main`` is False and nothing was evaluated or saved.
    """

    out: Path
    step: int
    loss: float | None
    #: Validation metrics at the end (None without validation data).
    val: dict[str, float] | None = None
    #: Each evaluator's metrics on the validation split, by its qualified id.
    evaluators: dict[str, dict[str, float]] = field(default_factory=dict)
    main: bool = True
    #: torch's threads per rank and the usable cores they were chosen from.
    threads: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The record ``summary.json`` holds."""
        return {"out": str(self.out), "step": self.step, "loss": self.loss, "val": self.val,
                "evaluators": self.evaluators, "threads": self.threads}


def is_main_rank() -> bool:
    """Whether this process is rank 0 (or the only one): the rank that prepares the folder and writes results."""
    return int(os.environ.get("RANK", "0")) == 0


def short_warmup_warning(pipeline: Any) -> str | None:
    """Why a run shorter than its warm-up never reaches its learning rate, or None."""
    train = pipeline.train
    if train.steps >= train.warmup_steps:
        return None
    return (f"train.steps={train.steps} is less than train.warmup_steps={train.warmup_steps}: the run ends in "
            f"warm-up and never reaches lr={train.lr} (lower warmup_steps or raise steps)")


def run_inputs(pipeline: Any) -> list[Path]:
    """What a run reads, which ``--overwrite`` must never remove: the pipeline file, the tokenizer's and weights'
    files, and every option (of any slot, a list's items too) naming a path that exists."""
    found = [Path(pipeline.source)] if getattr(pipeline, "source", None) else []
    found += list(pipeline.files().values())
    for slot in pipeline.all_slots():
        config = slot.config
        for f in dataclasses.fields(config) if dataclasses.is_dataclass(config) else ():
            value = getattr(config, f.name)
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, (str, Path)) and str(item) and Path(item).exists():
                    found.append(Path(item))
    return found


def check_evaluator_outputs(pipeline: Any, out: Path) -> None:
    """OutputPathError when an evaluator's ``out`` option (the convention for a file it writes) leaves the run
    folder: through ``..`` or a link, or an absolute path unless ``pipeline.outputs_anywhere``."""
    from registry_core.atomic import path_inside

    for slot in getattr(pipeline, "evaluator_slots", ()):
        value = getattr(slot.config, "out", None)
        if isinstance(value, (str, Path)) and str(value):
            path_inside(out, value, "evaluator option 'out'",
                        allow_absolute=bool(getattr(pipeline, "outputs_anywhere", False)))


def run_pipeline(pipeline: Any, out: str | Path, *, resume: bool = False, overwrite: bool = False) -> RunResult:
    """Train ``pipeline`` (a composed ``Pipeline``) into the run folder ``out`` and save it there.

    ``resume`` continues the run in ``out`` from its last checkpoint (a model whose shapes no longer fit it is
    refused, naming the changed options); ``overwrite`` first removes the run already in ``out``. Without
    either, a folder holding a run is refused. One process writes a run folder at a time (rank 0 holds its
    writer lock; a second run into it is refused naming the holder). Under torchrun every rank calls this, and a
    rank that refuses (the folder, the data, the checkpoint) ends every rank promptly with the same error.
    """
    from registry_core.pipeline._persist import CONFIG_FILE, read_run_config

    out = Path(out)
    if resume and overwrite:
        raise UsageError("resume continues a run and overwrite removes it; give one of them")
    check_output_dir(out)  # a file or an uncreatable folder fails before any data is prepared
    check_evaluator_outputs(pipeline, out)  # before any data is prepared or a step trained
    saved = read_run_config(out) if resume and (out / CONFIG_FILE).is_file() else None
    from registry_core.training.distributed import setup_distributed, teardown_distributed

    ctx = setup_distributed(pipeline.train.device)
    try:
        with contextlib.ExitStack() as held:
            fresh = _prepare(pipeline, out, ctx, held, resume, overwrite)
            return _run_in(pipeline, out, ctx, fresh, resume, saved)
    finally:
        teardown_distributed(ctx)  # after fit closed its trainer (and dropped DDP): frees the group's threads


def _prepare(pipeline: Any, out: Path, ctx: Any, held: contextlib.ExitStack, resume: bool, overwrite: bool) -> bool:
    """Rank 0 takes the folder's writer lock (held until ``held`` closes) and prepares it; under torchrun every
    rank then learns how that went, and a refusal ends every rank with the same error. True for a new folder."""
    from registry_core.pipeline._run_dir import prepare_run_dir
    from registry_core.training.distributed import one_outcome

    fresh = False
    with one_outcome(ctx):  # the other ranks write nothing before rank 0 has prepared the folder
        if ctx.is_main:
            held.enter_context(writer_lock(out, "--out"))
            fresh = prepare_run_dir(out, resume=resume, overwrite=overwrite, inputs=run_inputs(pipeline))
            warning = short_warmup_warning(pipeline)
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
    return fresh


def _run_in(pipeline: Any, out: Path, ctx: Any, fresh: bool, resume: bool, saved: dict[str, Any] | None) -> RunResult:
    from registry_core.pipeline._run_dir import discard_unused_run_dir, mark_run_dir
    from registry_core.training.distributed import one_outcome

    pipeline.run_dir = out  # data with relative outputs (text-shards' `out`) writes them inside the run folder
    try:
        _build(pipeline, ctx)
        if resume:
            with one_outcome(ctx):
                _check_resume(pipeline, out, saved)
        if fresh:
            mark_run_dir(out)  # a folder this run started in: the one --overwrite may remove later
        return _train_and_save(pipeline, out, ctx, resume)
    except BaseException:
        if fresh:
            discard_unused_run_dir(out)  # bad input leaves no folder behind
        raise


def _build(pipeline: Any, ctx: Any) -> None:
    """Build the pipeline; under torchrun rank 0 first (it prepares shared data), the others then find it ready.
    A rank that cannot build ends every rank with its error."""
    from registry_core.training.distributed import one_outcome

    if not ctx.distributed:
        pipeline.build()
        return
    with one_outcome(ctx):
        if ctx.is_main:
            pipeline.build()
    with one_outcome(ctx):
        if not ctx.is_main:
            pipeline.build()


def _check_resume(pipeline: Any, out: Path, saved: dict[str, Any] | None) -> None:
    from registry_core.pipeline._resume import check_resume_data, check_resume_fits, check_resume_hub, model_changes

    check_resume_data(out, pipeline.data_fingerprint())
    check_resume_hub(out, pipeline.hub_sources())

    changes = model_changes(saved, pipeline.to_config()) if saved is not None else []
    check_resume_fits(out / "checkpoints" / "last.pt", pipeline.model, changes, steps=pipeline.train.steps)


def _train_and_save(pipeline: Any, out: Path, ctx: Any, resume: bool) -> RunResult:
    """Train on every rank; rank 0 then evaluates and saves, and the other ranks end with its error if it fails."""
    from registry_core.training.distributed import one_outcome

    trained = pipeline.fit(out, resume=resume)
    result = RunResult(out, trained.step, trained.loss, trained.val, main=False, threads=trained.threads)
    with one_outcome(ctx):
        if ctx.is_main:
            result = _evaluate_and_save(pipeline, out, trained)
    return result


def _evaluate_and_save(pipeline: Any, out: Path, trained: Any) -> RunResult:
    metrics: dict[str, dict[str, float]] = {}
    if not pipeline.has_split("val"):
        skipped = f" and the evaluators ({', '.join(s.spec.name for s in pipeline.evaluator_slots)})"
        print(f"note: data `{pipeline.slots['data'].spec.name}` has no 'val' split: validation"
              f"{skipped if pipeline.evaluator_slots else ''} skipped", file=sys.stderr)
    elif pipeline.evaluator_slots:
        metrics = pipeline.evaluate("val")
    pipeline.save(out)
    result = RunResult(out, trained.step, trained.loss, trained.val, metrics, threads=trained.threads)
    write_json(out / SUMMARY_FILE, result.summary())
    return result
