"""Benchmark 4 (issue 4): greedy generation tokens/s with the preallocated KV cache vs without it, and (the serve
issue) against transformers' ``generate(use_cache=True)`` at batch 1 and 8.

Without the cache every new token re-runs the whole context (quadratic work); with it, the prompt is
prefilled once and each step runs one token against cached keys/values. Both paths are checked to
produce the same tokens, then timed alternately in rounds; prints tokens/s of each and the speed-up.

The second table runs the same model in GPT-2's layout (learned positions, tied head) as ours (``generate`` at
batch 1, ``generate_batch`` at batch 8 on prompts of different lengths) and as the GPT2LMHeadModel ``export``
writes (``generate`` with left padding and an attention mask), greedy, the same new tokens per prompt; it prints
tokens/s of each, the ratio (goal >= 1.3x at both) and whether the tokens are identical.

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
from registry_llm.generation import generate, generate_batch


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
    parser.add_argument("--no-transformers", action="store_true", help="skip the comparison with transformers")
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
    if not args.no_transformers:
        versus_transformers(args)


def versus_transformers(args: argparse.Namespace) -> None:
    """Tokens/s of ours and of transformers' generate on one GPT-2-layout model, at batch 1 and 8."""
    import tempfile

    import transformers

    from registry_llm.weights.hf_gpt2 import export_hf_gpt2

    torch.manual_seed(0)
    reg = get_registry()
    ctx = args.prompt_tokens + args.new_tokens
    parts = ModelParts(
        nn.Embedding(args.vocab, args.embed_dim),
        reg.build("positional_encoder", "learned", embed_dim=args.embed_dim, max_positions=ctx, init_std=0.2),
        reg.build("backbone", "gpt", embed_dim=args.embed_dim, depth=args.depth, heads=args.heads, max_positions=ctx,
                  init_std=0.2, dropout=0.0),
    )
    nn.init.normal_(parts.embed.weight, std=0.2)
    objective = reg.build("objective", "next-token", tie_weights=True)
    objective.bind(parts)
    with tempfile.TemporaryDirectory() as folder:
        ids = {"pad_token_id": 0, "bos_token_id": args.vocab - 1, "eos_token_id": args.vocab - 1}
        export_hf_gpt2(parts, folder, vocab_size=args.vocab, extra_config=ids)
        theirs = transformers.GPT2LMHeadModel.from_pretrained(folder).eval().to(args.device)
    for m in (parts.embed, parts.positional, parts.backbone, objective):
        m.to(args.device).eval()
    gen = torch.Generator().manual_seed(1)
    # batch 8: prompts from half to all of --prompt-tokens long (ragged, as a server sees them)
    lengths = [max(1, args.prompt_tokens // 2 + (i * args.prompt_tokens) // 16) for i in range(8)]
    prompts = [torch.randint(1, args.vocab, (n,), generator=gen).tolist() for n in lengths]
    new = args.new_tokens

    def ours_run(batch: list[list[int]]) -> list[list[int]]:
        if len(batch) == 1:
            return [generate(parts, objective, batch[0], max_new_tokens=new, temperature=0.0)]
        return generate_batch(parts, objective, batch, max_new_tokens=new, temperature=0.0)

    def theirs_run(batch: list[list[int]]) -> list[list[int]]:
        longest = max(len(p) for p in batch)
        ids = torch.zeros(len(batch), longest, dtype=torch.long)
        mask = torch.zeros(len(batch), longest, dtype=torch.long)
        for i, p in enumerate(batch):
            ids[i, longest - len(p):] = torch.tensor(p)
            mask[i, longest - len(p):] = 1
        with torch.inference_mode():
            out = theirs.generate(input_ids=ids.to(args.device), attention_mask=mask.to(args.device), do_sample=False,
                                  max_new_tokens=new, min_new_tokens=new, use_cache=True, pad_token_id=0)
        return out[:, longest:].tolist()

    print(f"\nvs transformers {transformers.__version__} GPT2LMHeadModel.generate(use_cache=True): the same GPT-2-layout "
          f"model (D={args.embed_dim} L={args.depth} H={args.heads} V={args.vocab}), greedy, {new} new tokens")
    print(f"{'batch':>5}  {'ours tok/s':>11}  {'transformers tok/s':>18}  {'ratio':>6}  identical tokens")
    for batch in ([prompts[-1]], prompts):
        same = ours_run(batch) == theirs_run(batch)  # warm-up and the check
        rates: dict[str, list[float]] = {"ours": [], "theirs": []}
        for _ in range(args.rounds):
            for side, fn in (("ours", ours_run), ("theirs", theirs_run)):
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                fn(batch)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                rates[side].append(len(batch) * new / (time.perf_counter() - start))
        a, b = statistics.median(rates["ours"]), statistics.median(rates["theirs"])
        print(f"{len(batch):>5}  {a:>11.1f}  {b:>18.1f}  {a / b:>5.2f}x  {same}")


if __name__ == "__main__":
    main()
