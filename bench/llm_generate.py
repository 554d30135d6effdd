"""Benchmark 4 (issue 4): greedy generation tokens/s with the preallocated KV cache vs without it.

Without the cache every new token re-runs the whole context (quadratic work); with it, the prompt is
prefilled once and each step runs one token against cached keys/values. Both paths are checked to
produce the same tokens, then timed alternately in rounds; prints tokens/s of each and the speed-up.

    .venv/bin/python bench/llm_generate.py
    .venv/bin/python bench/llm_generate.py --device cuda --embed-dim 768 --depth 12 --heads 12 --new-tokens 256
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from registry_core import get_registry
from registry_core.interfaces import ModelParts
from registry_llm.generation import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embed-dim", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--position", default="rope", choices=("sinusoidal", "learned", "rope", "alibi"))
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reg = get_registry()
    ctx = args.prompt_tokens + args.new_tokens
    pos_opts = {"sinusoidal": {"embed_dim": args.embed_dim}, "learned": {"embed_dim": args.embed_dim},
                "rope": {"embed_dim": args.embed_dim, "heads": args.heads}, "alibi": {"heads": args.heads}}
    parts = ModelParts(
        nn.Embedding(args.vocab, args.embed_dim),
        reg.build("positional_encoder", args.position, max_positions=ctx, **pos_opts[args.position]),
        reg.build("backbone", "gpt", embed_dim=args.embed_dim, depth=args.depth, heads=args.heads,
                  max_positions=ctx, init_std=0.2),
    )
    objective = reg.build("objective", "next-token", tie_weights=False)
    objective.bind(parts)
    for m in (parts.embed, parts.positional, parts.backbone, objective):
        m.to(args.device)
    prompt = torch.randint(0, args.vocab, (args.prompt_tokens,)).tolist()

    def run(use_cache: bool) -> tuple[float, list[int]]:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = generate(parts, objective, prompt, max_new_tokens=args.new_tokens, temperature=0.0, use_cache=use_cache)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return len(out) / (time.perf_counter() - start), out

    _, cached_out = run(True)  # warm-up, and the equality check
    _, plain_out = run(False)
    rates: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.rounds):
        for use_cache in (True, False):
            rates[use_cache].append(run(use_cache)[0])
    med = {k: statistics.median(v) for k, v in rates.items()}
    dev = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {dev}; gpt D={args.embed_dim} L={args.depth} H={args.heads} V={args.vocab} {args.position}; "
          f"prompt {args.prompt_tokens} + {args.new_tokens} new tokens, greedy")
    print(f"identical outputs: {cached_out == plain_out}")
    print(f"with KV cache    tokens/s {med[True]:10.1f}  (rounds: {', '.join(f'{r:.1f}' for r in rates[True])})")
    print(f"without KV cache tokens/s {med[False]:10.1f}  (rounds: {', '.join(f'{r:.1f}' for r in rates[False])})")
    print(f"speed-up with cache: {med[True] / med[False]:.2f}x")


if __name__ == "__main__":
    main()
