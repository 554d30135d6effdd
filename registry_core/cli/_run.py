"""CLI commands that compose and run pipelines: ``check`` (imports nothing heavy), ``run`` and ``ingest``.

Their errors propagate to the CLI's boundary (``registry_core.cli._errors``); with ``--json`` each prints its result as
one JSON document on stdout, and its progress only on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from registry_core._errors import ConfigError, RegistryCoreError
from registry_core._registry import Registry
from registry_core.cli._records import jsonable
from registry_core.cli._render import print_json, print_table

__all__ = ["add_pipeline_commands"]


def _compose(args: argparse.Namespace, extra: list[str] | None = None) -> Any:
    from registry_core.pipeline._pipeline import Pipeline

    return Pipeline.from_toml(args.file, overrides=[*(args.set or []), *(extra or [])])


def cmd_check(args: argparse.Namespace) -> int:
    pipeline = _compose(args)
    rows = pipeline.describe()
    changes = override_changes(args.file, args.set or [], pipeline)
    if args.json:
        print_json({"ok": True, "slots": rows, "overrides": changes})
        return 0
    print(f"{args.file}: ok" + (f" (pipeline {pipeline.name!r})" if pipeline.name else ""))
    if changes:
        print("overrides: " + "; ".join(f"{c['key']}: {_literal(c['before'])} -> {_literal(c['after'])}" for c in changes))
    _warn_short_warmup(pipeline)
    table = []
    for r in rows:
        wired = ", ".join(f"{k}={v} (from {src})" for k, (v, src) in r["wired"].items())
        table.append([r["slot"], r["id"], r["provider"], wired or "-"])
    print_table(table, ["slot", "component", "provider", "wired values"])
    return 0


_UNSET = "(unset)"


def _lookup(config: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(config, dict) or part not in config:
            return _UNSET
        config = config[part]
    return config


def _literal(value: Any) -> str:
    return value if value is _UNSET else json.dumps(jsonable(value))


def override_changes(file: str, overrides: list[str], pipeline: Any) -> list[dict[str, Any]]:
    """Each ``--set`` key with its value without the overrides (the file's, else the default) and in ``pipeline``."""
    from registry_core.pipeline._compose import load_toml
    from registry_core.pipeline._pipeline import compose

    keys = list(dict.fromkeys(item.partition("=")[0].strip() for item in overrides))
    if not keys:
        return []
    try:
        before = compose(load_toml(file), pipeline.registry).to_config()
    except ConfigError:  # the file alone does not compose: show what it says
        before = load_toml(file)
    after = pipeline.to_config()
    return [{"key": k, "before": _lookup(before, k), "after": _lookup(after, k)} for k in keys]


def _warn_short_warmup(pipeline: Any) -> None:
    """A run shorter than its warm-up never reaches its learning rate; ``check`` says so."""
    from registry_core.pipeline._run import short_warmup_warning

    warning = short_warmup_warning(pipeline)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)


def _compose_run(args: argparse.Namespace, extra: list[str]) -> tuple[Any, Path]:
    """The pipeline to train and its run folder.

    With ``--resume`` and no FILE, the run folder's ``pipeline.toml`` is the config (``--set`` and ``--steps``
    apply on top), so the first run's overrides need not be repeated; a FILE given is composed instead,
    and the model it builds is checked against the checkpoint after building.
    """
    from registry_core.pipeline._compose import apply_overrides
    from registry_core.pipeline._persist import CONFIG_FILE, read_run_config
    from registry_core.pipeline._pipeline import compose
    from registry_core.pipeline._run_dir import RunFolderError

    if args.file is None:
        folder = Path(args.out)
        if not (folder / CONFIG_FILE).is_file():
            raise RunFolderError(f"{folder} holds no {CONFIG_FILE} to resume; give the pipeline FILE")
        own = read_run_config(folder)
        resumed = compose(apply_overrides(own, [*(args.set or []), *extra]))
        resumed.source = folder / CONFIG_FILE
        return resumed, folder
    pipeline = _compose(args, extra)
    return pipeline, Path(args.out or Path("runs") / (pipeline.name or Path(args.file).stem))


def cmd_run(args: argparse.Namespace) -> int:
    """Compose the pipeline (or the run folder's own), then ``Pipeline.run`` and print what it did."""
    from registry_core._errors import UsageError
    from registry_core._registry import get_registry

    extra = [f"train.steps={args.steps}"] if args.steps is not None else []
    if args.resume and args.overwrite:
        raise UsageError("--resume continues a run and --overwrite removes it; give one of them")
    if args.file is None and not (args.resume and args.out):
        raise UsageError("run needs a pipeline FILE (or --resume --out RUN_DIR to continue a run with its own "
                         "pipeline.toml)")
    pipeline, out = _compose_run(args, extra)
    result = pipeline.run(out, resume=args.resume, overwrite=args.overwrite, outputs_anywhere=args.outputs_anywhere)
    if not result.main:
        return 0
    extras: dict[str, Any] = {}
    for found in get_registry().plugin_manager.hook.registry_core_run_extras(pipeline=pipeline, result=result,
                                                                              args=args):
        extras.update(found or {})
    if args.json:
        print_json({**result.summary(), **extras})
        return 0
    _print_run(result)
    for key, value in extras.items():
        print(f"{key}: {value}")
    return 0


def _print_run(result: Any) -> None:
    print(f"trained {result.step} steps into {result.out}; last loss {result.loss}")
    if result.val:
        print("validation: " + _metrics_line(result.val))
        curve = _val_curve(result.out / "metrics.jsonl")
        if len(curve) > 1:
            (s0, v0), (s1, v1) = curve[0], curve[-1]
            print(f"validation loss: first {v0:.4f} (step {s0}) -> last {v1:.4f} (step {s1})")
    for name, values in result.evaluators.items():
        print(f"{name}: " + _metrics_line(values))


def _metrics_line(values: dict[str, Any]) -> str:
    """``k=v, ...``: counts (integers) as they are, other numbers to 4 decimals; tables (a confusion matrix) are
    named only: they are in summary.json."""

    def shown(key: str, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{key}=(in summary.json)"
        return f"{key}={value}" if isinstance(value, int) else f"{key}={value:.4f}"

    return ", ".join(shown(k, v) for k, v in values.items())


def _val_curve(metrics: Path) -> list[tuple[int, float]]:
    """(step, val_loss) of every evaluation logged in ``metrics.jsonl``."""
    if not metrics.exists():
        return []
    curve = []
    for raw in metrics.read_bytes().splitlines():  # a report only: a torn or foreign line is skipped
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and "val_loss" in record:
            curve.append((int(record["step"]), float(record["val_loss"])))
    return curve


def cmd_ingest(args: argparse.Namespace) -> int:
    """Build only the ``data`` slot of a pipeline file and run its ``prepare()`` (e.g. STAC -> Zarr)."""
    from registry_core._registry import get_registry
    from registry_core.pipeline._compose import apply_overrides, compose_slot, load_toml

    reg = get_registry()
    slot = compose_slot(apply_overrides(load_toml(args.file), args.set or []), "data", reg)
    source = reg.build_spec(slot.spec, slot.config)
    if not hasattr(source, "prepare"):
        raise RegistryCoreError(f"data source {slot.spec.id} of {args.file} has no prepare() step; `ingest` runs "
                                "the preparation of data sources that have one (e.g. stac-zarr, text-shards)")
    import inspect

    if "progress" in inspect.signature(source.prepare).parameters:
        source.prepare(progress=True)  # a bar on a terminal, plain lines otherwise
    else:
        source.prepare()
    where = getattr(slot.config, "store", None) or getattr(slot.config, "out", None)
    if args.json:
        print_json({"data": slot.spec.id, "out": None if where is None else str(where)})
        return 0
    print(f"ingested data `{slot.spec.id}`" + (f" into {where}" if where else ""))
    return 0


def _add_plugin_run_arguments(parser: argparse.ArgumentParser, registry: Registry) -> None:
    """Each plugin's ``run`` options (``registry_core_run_arguments``); one that fails is a warning, not a crash."""
    for impl in registry.plugin_manager.hook.registry_core_run_arguments.get_hookimpls():
        try:
            impl.function(parser=parser)
        except Exception as exc:
            print(f"warning: plugin {impl.plugin_name!r} failed to add its run options: {type(exc).__name__}: {exc}",
                  file=sys.stderr)


def add_pipeline_commands(sub: Any, registry: Registry) -> None:
    p = sub.add_parser("check", help="resolve, validate, wire and check a pipeline file (imports no component code)")
    p.add_argument("file", help="pipeline TOML file")
    p.add_argument("--set", action="append", metavar="SLOT.KEY=VALUE", help="override an option (repeatable)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("run", help="build and train a pipeline; writes metrics, checkpoints, config, lock, weights")
    p.add_argument("file", nargs="?",
                   help="pipeline TOML file (optional with --resume: the run folder's own pipeline.toml is used)")
    p.add_argument("--out", help="output folder (default: runs/<pipeline name>); refused when it holds another run")
    p.add_argument("--steps", type=int, help="override train.steps")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in OUT from OUT/checkpoints/last.pt (an override that changes the model's "
                        "shape is refused)")
    p.add_argument("--overwrite", action="store_true", help="remove the run already in OUT first (keeps nothing); only a run folder registry-core wrote (it carries its marker), never a link, an input or the working folder")
    p.add_argument("--set", action="append", metavar="SLOT.KEY=VALUE", help="override an option (repeatable)")
    p.add_argument("--outputs-anywhere", action="store_true",
                   help="let evaluators write to absolute paths outside OUT (their relative paths always stay inside "
                        "it); off by default, since a resumed run's config may come from elsewhere")
    p.set_defaults(func=cmd_run)
    _add_plugin_run_arguments(p, registry)

    p = sub.add_parser("ingest", help="run the data slot's preparation (e.g. STAC search -> Zarr datacube)")
    p.add_argument("file", help="pipeline or data TOML file with a [data] table")
    p.add_argument("--set", action="append", metavar="data.KEY=VALUE", help="override an option (repeatable)")
    p.set_defaults(func=cmd_ingest)
