"""registry-llm's CLI command ``generate``: continue a prompt with a saved pipeline (KV-cached decoding).

Declared in ``plugin.py``; this module is imported only when the command runs, and itself imports no
torch until then (the pipeline is loaded inside the handler).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_generate_arguments", "continue_prompt", "generate"]


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``generate``."""
    parser.add_argument("dir", help="folder written by run / Pipeline.save")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 for greedy decoding")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest tokens (k >= 1)")
    parser.add_argument("--top-p", type=float, default=None, help="sample among the likeliest tokens of mass p, in (0, 1]")
    parser.add_argument("--seed", type=int, default=0)


def continue_prompt(pipeline: Any, prompt: str, **options: Any) -> str:
    """The prompt followed by what the pipeline's objective generates for it (``options``: its sampling)."""
    tok = pipeline.tokenizer
    ids = pipeline.objective.generate(pipeline.parts, tok.encode(prompt), **options)
    return str(prompt + tok.decode(list(ids)))


def generate(args: argparse.Namespace) -> int:
    """Load a saved pipeline and print the prompt with its continuation; 1 when the objective cannot generate."""
    from registry_core import Pipeline
    from registry_llm.generation import check_sampling

    try:
        check_sampling(args.temperature, args.top_k, args.top_p)
    except ValueError as exc:
        print(f"error: --{exc}".replace("_", "-", 1), file=sys.stderr)
        return 2
    if args.max_tokens < 0:
        print(f"error: --max-tokens must be >= 0, got {args.max_tokens}", file=sys.stderr)
        return 2
    pipeline = Pipeline.load(args.dir)
    if not hasattr(pipeline.objective, "generate"):
        print(f"error: objective {pipeline.slots['objective'].spec.id} cannot generate", file=sys.stderr)
        return 1
    print(continue_prompt(pipeline, args.prompt, max_new_tokens=args.max_tokens, temperature=args.temperature,
                          top_k=args.top_k, top_p=args.top_p, seed=args.seed))
    return 0
