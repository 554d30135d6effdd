"""The ``export`` command: a trained run folder written in a format a plugin offers (``--to hf-gpt2``).

A format is a weights component whose spec names an ``exporter``; the core knows none of them. The
exporter gets the loaded pipeline and the output folder, and raises ValueError saying why a run cannot be
written in its format (``hf-gpt2`` needs learned positions, say).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from registry_core._errors import ConfigError, RegistryCoreError, UsageError
from registry_core._registry import Registry, get_registry
from registry_core._spec import ComponentSpec
from registry_core._targets import load_target
from registry_core.atomic import OUTPUT_MARKER, mark_output, removal_problem
from registry_core.cli._render import print_json

__all__ = ["EXPORT_KIND", "add_export_arguments", "cmd_export", "export_formats"]

#: The output kind an export folder is marked with: only such a folder takes a later ``--overwrite``.
EXPORT_KIND = "export"


def export_formats(reg: Registry) -> list[ComponentSpec]:
    """The active weights components that can write a run (their spec names an exporter), by name."""
    return [s for s in reg.list(kind="weights") if s.exporter and reg.status(s) == "active"]


def _fail(message: str, code: int = 1) -> int:
    """Raise the error the CLI's boundary reports (one `error:` line, or the JSON error document): exit ``code``."""
    raise (UsageError if code == 2 else RegistryCoreError)(message)


def _format(reg: Registry, name: str) -> ComponentSpec | str:
    """The weights spec ``--to`` names, or the one-line reason it cannot be used."""
    formats = export_formats(reg)
    offered = ", ".join([DEPLOY, *(s.name for s in formats)])
    try:
        spec = reg.get("weights", name)
    except LookupError:
        return f"unknown export format {name!r}; installed formats: {offered}"
    if not spec.exporter:
        return f"weights {spec.id} can be loaded but not exported; installed formats: {offered}"
    return spec


def _out_problem(out: Path, run: Path, overwrite: bool) -> str | None:
    if out.exists() and not out.is_dir():
        return f"output {out} is a file; expected a folder to write the export into"
    real_out, real_run = out.resolve(), run.resolve()
    if real_out.is_relative_to(real_run) or real_run.is_relative_to(real_out):
        return f"output folder {out} is, holds or lies inside the run folder {run}; choose a folder outside it"
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            return f"output folder {out} is not empty; choose another folder or pass --overwrite"
        problem = removal_problem(out, EXPORT_KIND, inputs=[run])
        if problem:
            return f"--overwrite refused: {problem}"
    return None


#: The core's own format: a run folder that needs nothing outside itself (``Pipeline.save_deployment``).
DEPLOY = "deploy"


def _deploy(run: Path, out: Path, args: argparse.Namespace) -> int:
    from registry_core.pipeline._pipeline import Pipeline

    try:
        pipeline = Pipeline.load(run)
    except (ConfigError, OSError, ValueError) as exc:
        return _fail(f"cannot load run {run}: {exc}")
    written = pipeline.save_deployment(out)
    mark_output(written, EXPORT_KIND)
    files = sorted(p.name for p in written.iterdir() if p.name != OUTPUT_MARKER)
    if args.json:
        print_json({"run": str(run), "format": DEPLOY, "out": str(written), "files": files})
    else:
        print(f"exported {run} as a self-contained run folder into {written}: {', '.join(files)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    reg = get_registry()
    if args.to == DEPLOY:
        run, out = Path(args.run_dir), Path(args.out)
        if not (run / "pipeline.toml").is_file():
            return _fail(f"{run} is not a run folder (no pipeline.toml); expected a folder written by run or "
                         "Pipeline.save")
        problem = _out_problem(out, run, args.overwrite)
        return _fail(problem) if problem else _deploy(run, out, args)
    spec = _format(reg, args.to)
    if isinstance(spec, str):
        return _fail(spec, 2)
    run, out = Path(args.run_dir), Path(args.out)
    if not (run / "pipeline.toml").is_file():
        return _fail(f"{run} is not a run folder (no pipeline.toml); expected a folder written by run or Pipeline.save")
    problem = _out_problem(out, run, args.overwrite)
    if problem:
        return _fail(problem)
    assert spec.exporter is not None
    try:
        exporter = load_target(spec.exporter)
    except Exception as exc:
        return _fail(f"exporter {spec.exporter!r} of weights {spec.id} cannot be imported: {type(exc).__name__}: {exc}")
    from registry_core.pipeline._pipeline import Pipeline

    try:
        pipeline = Pipeline.load(run)
    except (ConfigError, OSError, ValueError) as exc:
        return _fail(f"cannot load run {run}: {exc}")
    try:
        written = Path(exporter(pipeline, out))
    except ValueError as exc:
        return _fail(f"cannot export {run} as {spec.name}: {exc}")
    if written.is_dir():
        mark_output(written, EXPORT_KIND)  # what lets a later --overwrite write here again
    files = sorted(p.name for p in written.iterdir() if p.name != OUTPUT_MARKER) if written.is_dir() else [written.name]
    if args.json:
        print_json({"run": str(run), "format": spec.id, "out": str(written), "files": files})
    else:
        print(f"exported {run} as {spec.name} into {written}: {', '.join(files)}")
    return 0


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``export``; ``--to`` lists the formats the parser's registry offers."""
    reg = getattr(parser, "registry", None) or get_registry()
    names = ", ".join([DEPLOY, *(s.name for s in export_formats(reg))])
    parser.description = ("Write a trained run folder in a format a plugin offers, e.g. a Hugging Face folder that "
                          "transformers opens, or as a self-contained run folder (deploy: what predict and serve "
                          f"need, with no pretraining run or card behind it) (formats: {names}).")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="folder written by run / Pipeline.save")
    parser.add_argument("out", metavar="OUT", help="folder to write the export into (created; must be empty)")
    parser.add_argument("--to", required=True, metavar="FORMAT", help=f"export format: {names}")
    parser.add_argument("--overwrite", action="store_true", help="write into an earlier export of registry-core in OUT (it carries its marker), replacing its files")
