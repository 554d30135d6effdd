"""registry-llm's CLI commands: ``generate`` (continue a prompt with a saved pipeline, KV-cached decoding), and the
text options of the core's ``serve`` (the OpenAI-compatible server; its code is in ``registry_llm.serve``).

Declared in ``plugin.py``; this module is imported only when the command runs, and itself imports no
torch until then (the pipeline is loaded inside the handler).
"""

from __future__ import annotations

import argparse
from typing import Any

from registry_core import RegistryCoreError

__all__ = ["add_generate_arguments", "add_text_serve_arguments", "continue_prompt", "generate"]


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``generate``."""
    parser.add_argument("dir", help="folder written by run / Pipeline.save")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 for greedy decoding")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest tokens (k >= 1)")
    parser.add_argument("--top-p", type=float, default=None, help="sample among the likeliest tokens of mass p, in (0, 1]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--raw", action="store_true", help="an instruction-tuned run's prompt as it is, without its "
                        "chat template (by default the template wraps it and the answer stops at eos)")


def continue_prompt(pipeline: Any, prompt: str, chat: bool = True, **options: Any) -> str:
    """The prompt followed by what the pipeline's objective generates for it (``options``: its sampling). A run
    whose data has a chat template (instruction-pairs) gets the prompt wrapped in it and stops at eos, unless
    ``chat`` is false."""
    tok = pipeline.tokenizer
    template = getattr(pipeline.data, "template", None) if chat else None
    if template is not None:
        prompt = template.prompt(prompt)
        eos = getattr(tok, "eos_id", None)
        options.setdefault("stop_tokens", [] if eos is None else [int(eos)])
    ids = pipeline.objective.generate(pipeline.parts, tok.encode(prompt), **options)
    return str(prompt + tok.decode(list(ids), skip_special=template is not None))


def generate(args: argparse.Namespace) -> int:
    """Load a saved pipeline and print the prompt with its continuation (``--json``: as a JSON object).

    Errors propagate to the CLI's boundary, which prints them as one ``error:`` line.
    """
    from registry_core import Pipeline, UsageError
    from registry_llm.generation import check_sampling

    try:  # before the run is read: a bad option is a usage error (exit 2)
        check_sampling(args.temperature, args.top_k, args.top_p)
    except ValueError as exc:
        raise UsageError(f"--{exc}".replace("_", "-", 1)) from None
    if args.max_tokens < 0:
        raise UsageError(f"--max-tokens must be >= 0, got {args.max_tokens}")
    pipeline = Pipeline.load(args.dir)
    if not hasattr(pipeline.objective, "generate"):
        raise RegistryCoreError(f"objective {pipeline.slots['objective'].spec.id} of run {args.dir} cannot generate; "
                                "expected a run of a language-model objective such as next-token")
    text = continue_prompt(pipeline, args.prompt, not getattr(args, "raw", False), max_new_tokens=args.max_tokens,
                           temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    if getattr(args, "json", False):
        from registry_core.cli import print_json

        print_json({"dir": str(args.dir), "prompt": args.prompt, "text": text})
    else:
        print(text)
    return 0


def add_text_serve_arguments(group: Any) -> None:
    """``serve``'s options for a text run or card (the core's ``serve`` adds them as a group)."""
    group.add_argument("--max-batch", type=int, default=8, help="requests decoded together (KV-cache slots)")
    group.add_argument("--max-tokens", type=int, default=512, help="the most tokens one request may generate")
    group.add_argument("--max-prompt-tokens", type=int, default=None,
                       help="the longest prompt accepted, in tokens (default: the model's context)")
    group.add_argument("--prefill-chunk", type=int, default=64,
                       help="prompt tokens run per step, so a long prompt stalls running requests one chunk at most")
