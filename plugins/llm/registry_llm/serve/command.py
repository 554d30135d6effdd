"""``python -m registry_core serve RUN_DIR|CARD``: the OpenAI-compatible server over a text run or card, on uvicorn
(its options are declared in ``registry_llm.commands``).

Safe by default: it binds loopback; ``--api-key-env VAR`` makes every route but ``/health`` need that key; binding
another address without a key is refused unless ``--insecure`` says so. SIGTERM or Ctrl-C stops accepting
connections, lets running requests finish for ``--grace`` seconds, cancels the rest and exits 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from registry_core import RegistryCoreError, UsageError

__all__ = ["load_served_model", "serve"]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(args: argparse.Namespace) -> str | None:
    """The API key (None without --api-key-env); UsageError for options that cannot run."""
    for name in ("max_batch", "max_queue", "max_tokens", "max_body_bytes", "prefill_chunk"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if getattr(args, "threads", None) is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    if args.max_prompt_tokens is not None and args.max_prompt_tokens < 1:
        raise UsageError(f"--max-prompt-tokens must be >= 1, got {args.max_prompt_tokens}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    key = None
    if args.api_key_env is not None:
        key = os.environ.get(args.api_key_env, "")
        if not key:
            raise UsageError(f"--api-key-env {args.api_key_env}: the environment variable is not set or empty")
    if not _loopback(args.host) and key is None:
        if not args.insecure:
            raise UsageError(f"--host {args.host} is reachable from other machines and no API key is set; pass "
                             "--api-key-env VAR, or --insecure to serve it open")
        print(f"warning: serving on {args.host} without an API key (--insecure): anyone who reaches it may use it",
              file=sys.stderr, flush=True)
    return key


def _card_parts(name: str) -> tuple[Any, Any, Any, str]:
    """(parts, objective, tokenizer, card name) of a GPT-2 card, pulled through huggingface_hub (its cache, HF_ENDPOINT,
    HF_TOKEN, HF_HUB_OFFLINE); RegistryCoreError for a card of another kind of model."""
    from torch import nn

    from registry_core import get_registry
    from registry_core.hub import find_cards
    from registry_core.interfaces import ModelParts
    from registry_llm.weights.hf_gpt2 import HFGPT2Weights, gpt_options

    reg = get_registry()
    cards = [s for s in find_cards(reg, name) if s.kind == "weights"]
    if not cards:
        raise RegistryCoreError(f"card {name!r} holds no model weights; serve needs a language model's card (gpt2, ...)")
    if cards[0].requires.get("causal") is not True:  # checked before anything is pulled
        raise RegistryCoreError(f"card {cards[0].id} is not a causal language model ({cards[0].summary.split(':')[0]});"
                                " serve generates text: expected a card such as gpt2")
    weights = reg.build("weights", cards[0].id)
    if not isinstance(weights, HFGPT2Weights):
        raise RegistryCoreError(f"card {cards[0].id} loads {type(weights).__name__}, which serve cannot run; expected "
                                "a GPT-2 card such as gpt2")
    options = gpt_options(weights.path)
    vocab = int(weights.meta["vocab_size"])
    parts = ModelParts(nn.Embedding(vocab, options["embed_dim"]),
                       reg.build("positional_encoder", "learned", embed_dim=options["embed_dim"],
                                 max_positions=options["max_positions"]),
                       reg.build("backbone", "gpt", **options))
    objective = reg.build("objective", "next-token", vocab_size=vocab)
    objective.bind(parts)
    weights.load_into(parts)
    source = weights.path / "tokenizer.json"  # else vocab.json + merges.txt in the folder
    tokenizer = reg.build("tokenizer", "bpe", path=str(source if source.is_file() else weights.path))
    return parts, objective, tokenizer, cards[0].name


def load_served_model(target: str | Path, name: str | None, args: argparse.Namespace) -> Any:
    """A run folder's pipeline, or a card's pulled model, as a :class:`~registry_llm.serve.app.ServedModel` with its
    engine (not started)."""
    import torch

    from registry_core import Pipeline
    from registry_llm.heads.sequence import pool_hidden
    from registry_llm.serve.app import ServedModel
    from registry_llm.serve.engine import Engine

    run_dir = Path(target)
    if not run_dir.is_dir() and not Path(target).is_absolute() and "/" not in str(target):
        parts, objective, tokenizer, card = _card_parts(str(target))
        template, default_name, saved = None, card, None
    else:
        pipeline = Pipeline.load(run_dir)
        objective, parts = pipeline.objective, pipeline.parts
        if not hasattr(objective, "generate") or not hasattr(objective, "logits"):
            raise RegistryCoreError(f"objective {pipeline.slots['objective'].spec.id} of run {run_dir} cannot "
                                    "generate; serve needs a run of a language-model objective such as next-token")
        tokenizer = pipeline.tokenizer
        template = getattr(pipeline.data, "template", None)
        default_name, saved = str(pipeline.name or run_dir.resolve().name), run_dir / "summary.json"
    engine = Engine(parts, objective, max_batch=args.max_batch, max_queue=args.max_queue,
                    prefill_chunk=args.prefill_chunk)
    causal = bool(getattr(parts.backbone, "causal", True))
    pad = getattr(tokenizer, "pad_id", None)

    @torch.inference_mode()
    def embed(batch: list[list[int]]) -> Any:
        longest = max(len(ids) for ids in batch)
        ids = torch.full((len(batch), longest), int(pad or 0), dtype=torch.long)
        keep = torch.zeros(len(batch), longest, dtype=torch.bool)
        for i, row in enumerate(batch):
            ids[i, : len(row)] = torch.tensor(row)
            keep[i, : len(row)] = True
        device = next(parts.backbone.parameters()).device
        ids, keep = ids.to(device), keep.to(device)
        hidden = parts.backbone(parts.embed(ids), parts.positional, None, keep=None if causal else keep)
        return pool_hidden(hidden, keep, "mean").float().cpu().numpy()

    created = int(saved.stat().st_mtime) if saved is not None and saved.is_file() else int(time.time())
    return ServedModel(name=name or default_name, tokenizer=tokenizer,
                       template=template, engine=engine, embed=embed, eos_id=getattr(tokenizer, "eos_id", None),
                       created=created)


def serve(args: argparse.Namespace) -> int:
    """Load the run, bind, serve until SIGTERM / Ctrl-C; exit 0."""
    key = _check(args)
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise RegistryCoreError(f"serve needs {exc.name}, which is not installed; pip install "
                                "'registry-llm[serve]'") from None
    import torch

    from registry_core.training.threads import choose_threads
    from registry_llm.serve.app import Limits, create_app

    # the engine thread computes, the event loop answers: on a small machine two torch threads beside the HTTP
    # server halve the throughput, so one core is left to it, as training leaves one to its data loading
    threads = choose_threads(getattr(args, "threads", None))
    torch.set_num_threads(threads.torch)
    model = load_served_model(args.dir, args.name, args)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        raise RegistryCoreError(f"cannot bind {args.host}:{args.port}: {exc.strerror or exc}") from None
    sock.listen(2048)  # connections queue from now on, before uvicorn's loop runs: the address printed works at once
    port = sock.getsockname()[1]
    limits = Limits(max_tokens=args.max_tokens, max_prompt_tokens=args.max_prompt_tokens,
                    max_body_bytes=args.max_body_bytes, api_key=key)
    app = create_app(model, limits)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=max(args.grace, 0.1),
                            access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    model.engine.start()
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    print(f"serving {model.name} on http://{host}:{port}/v1 (chat: {'yes' if model.template else 'no'}; "
          f"{args.max_batch} slots; torch threads {threads.torch} of {threads.cores} cores; SIGTERM or Ctrl-C stops)",
          flush=True)
    # uvicorn handles SIGTERM / SIGINT while it serves (stop accepting, let requests finish for the grace period)
    # and then raises the signal again for the handlers it found: no-ops here, so the command ends with exit 0
    before = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        model.engine.stop(timeout=max(args.grace, 1.0))
        sock.close()
        for sig, handler in before.items():
            signal.signal(sig, handler)
    print("stopped", flush=True)
    return 0
