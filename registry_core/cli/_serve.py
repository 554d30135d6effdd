"""The ``serve`` command: an HTTP server over a run folder or a card, run by the plugin that declares the run's
modality with a ``server`` (text: the OpenAI API; imagery: ``/v1/predict``), on the shared app of
``registry_core.serve``.

Safe by default: it binds loopback; ``--api-key-env VAR`` makes every route but ``/health`` need that key; binding
another address without a key is refused unless ``--insecure`` says so. SIGTERM or Ctrl-C stops accepting
connections, lets running requests finish for ``--grace`` seconds, cancels the rest and exits 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from registry_core._errors import ConfigError, PluginError, RegistryCoreError, UsageError
from registry_core._registry import Registry, get_registry
from registry_core._targets import load_target

__all__ = ["add_serve_arguments", "cmd_serve", "served_modality"]

#: The largest request body when neither ``--max-body-bytes`` nor the modality's server says otherwise.
DEFAULT_BODY_BYTES = 1 << 20


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every served model takes, then a group per modality whose server adds its own."""
    parser.add_argument("dir", metavar="RUN_DIR|CARD",
                        help="folder written by run (a text run whose objective generates, or an imagery run that "
                        "predicts), or a causal language model's card (gpt2, ...: pulled from the hub on first use)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (0: any free port, printed)")
    parser.add_argument("--api-key-env", metavar="VAR", default=None,
                        help="name of the environment variable holding the API key clients must send as "
                        "'Authorization: Bearer <key>'")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback --host without an API key (anyone who reaches it may use it)")
    parser.add_argument("--name", default=None, help="the model id clients name (default: the run's name)")
    parser.add_argument("--max-queue", type=int, default=64, help="requests that may wait for the model; more get 429")
    parser.add_argument("--max-body-bytes", type=int, default=None,
                        help="the largest request body accepted (default: 1 MiB for text, enough for --max-pixels "
                        "of float32 bands for imagery)")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds running requests get to finish on SIGTERM")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the model (default: OMP_NUM_THREADS, else the usable cores less one, "
                        "which the HTTP server keeps)")
    registry = getattr(parser, "registry", None) or get_registry()
    for modality, spec in sorted(registry.servers().items()):
        if spec.serve_arguments is None:
            continue
        group = parser.add_argument_group(f"{modality} models (plugin {spec.plugin})")
        try:
            load_target(spec.serve_arguments)(group)
        except Exception as exc:
            raise PluginError(f"modality {modality!r} of plugin {spec.plugin!r}: its serve arguments "
                              f"{spec.serve_arguments!r} failed: {type(exc).__name__}: {exc}") from exc


def served_modality(registry: Registry, target: str) -> str:
    """The modality of the run folder or card ``target`` names (RegistryCoreError when it is neither)."""
    path = Path(target)
    if path.is_dir():
        if not (path / "pipeline.toml").is_file():
            raise RegistryCoreError(f"{target} is not a run folder (no pipeline.toml); expected a folder written by "
                                    "run, or a card's name")
        from registry_core.pipeline._compose import compose_config

        try:
            composition = compose_config(path / "pipeline.toml", registry)
        except ConfigError as exc:
            raise RegistryCoreError(f"run {target}: its pipeline.toml does not compose: {exc}") from None
        found = sorted({s.spec.modality for s in composition.slots.values()} - {"any"})
        if not found:
            raise RegistryCoreError(f"run {target} uses only modality-free components; serve cannot tell how to "
                                    "serve it")
        return found[0]
    if path.is_absolute() or "/" in target or path.exists():
        raise RegistryCoreError(f"{target} is not a run folder; expected a folder written by run, or a card's name")
    from registry_core.hub import find_cards

    return find_cards(registry, target)[0].modality


def _check(args: argparse.Namespace) -> None:
    for name in ("max_queue", "max_body_bytes", "threads"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    if args.grace < 0:
        raise UsageError(f"--grace must be >= 0 seconds, got {args.grace}")


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the run or card through its modality's server, bind, serve until SIGTERM / Ctrl-C; exit 0."""
    _check(args)
    from registry_core.serve import api_key

    key = api_key(args.host, args.api_key_env, args.insecure)
    registry = get_registry()
    modality = served_modality(registry, args.dir)
    spec = registry.servers().get(modality)
    if spec is None or spec.server is None:
        offered = ", ".join(sorted(registry.servers())) or "none"
        raise RegistryCoreError(f"{args.dir} is a {modality} model and no installed plugin serves {modality} models "
                                f"(served modalities: {offered})")
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise RegistryCoreError(f"serve needs {exc.name}, which is not installed; pip install "
                                "'registry-core[serve]'") from None
    import torch

    from registry_core.serve import ServeLimits, create_app, run_server
    from registry_core.training.threads import choose_threads

    # the model computes on its own thread, the event loop answers: on a small machine two torch threads beside the
    # HTTP server halve the throughput, so one core is left to it, as training leaves one to its data loading
    threads = choose_threads(args.threads, setting="--threads")
    torch.set_num_threads(threads.torch)
    server: Any = load_target(spec.server)
    served = server(args.dir, args)
    limits = ServeLimits(max_body_bytes=args.max_body_bytes or served.body_limit or DEFAULT_BODY_BYTES, api_key=key)
    run_server(create_app(served, limits), served, args.host, args.port, args.grace,
               about=f"torch threads {threads.torch} of {threads.cores} cores")
    return 0
