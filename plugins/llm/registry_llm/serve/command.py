"""How ``serve`` loads a text run or a GPT-2 card (:func:`text_server`, named by the ``text`` modality): its engine
and OpenAI routes, on the core's server; the text options are declared in ``registry_llm.commands``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from registry_core import RegistryCoreError, UsageError

__all__ = ["load_served_model", "text_server"]


def _check(args: argparse.Namespace) -> None:
    """UsageError for text options that cannot run."""
    for name in ("max_batch", "max_tokens", "prefill_chunk"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.max_prompt_tokens is not None and args.max_prompt_tokens < 1:
        raise UsageError(f"--max-prompt-tokens must be >= 1, got {args.max_prompt_tokens}")


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


def text_server(target: str, args: argparse.Namespace) -> Any:
    """``serve``'s server for the text modality: the run folder or card ``target`` with its engine (started by the
    core's runner) and the OpenAI routes."""
    _check(args)
    from registry_llm.serve.app import Limits, served_text

    model = load_served_model(target, args.name, args)
    return served_text(model, Limits(max_tokens=args.max_tokens, max_prompt_tokens=args.max_prompt_tokens))
