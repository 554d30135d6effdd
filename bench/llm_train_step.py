"""Benchmark 3 (issue 4): ``gpt`` training-step tokens/s against ``transformers``' GPT2LMHeadModel, same size.

Both models: learned positions, tied LM head, no dropout, AdamW, forward + backward + step on the same
random batch; they alternate in rounds within one run so load on the machine hits both alike. Prints
each side's tokens/s (median over rounds), the ratio ours / HF, and our model FLOPs utilisation proxy.

    .venv/bin/python bench/llm_train_step.py                       # CPU, a small model
    .venv/bin/python bench/llm_train_step.py --device cuda --dtype bf16 --embed-dim 768 --depth 12 \
        --heads 12 --seq-len 1024 --batch 8 --vocab 50304           # GPT-2 small on a GPU
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from registry_core import get_registry
from registry_core.interfaces import ModelParts


def ours(args: argparse.Namespace) -> tuple[list[nn.Module], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    reg = get_registry()
    embed = nn.Embedding(args.vocab, args.embed_dim)
    nn.init.normal_(embed.weight, std=0.02)
    positional = reg.build("positional_encoder", "learned", embed_dim=args.embed_dim, max_positions=args.seq_len)
    backbone = reg.build("backbone", "gpt", embed_dim=args.embed_dim, depth=args.depth, heads=args.heads,
                         max_positions=args.seq_len, activation="gelu-tanh")
    parts = ModelParts(embed, positional, backbone)
    objective = reg.build("objective", "next-token")
    objective.bind(parts)

    def step(ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss, _ = objective(parts, {"input_ids": ids, "targets": targets})
        loss_t: torch.Tensor = loss
        return loss_t

    return [embed, positional, backbone], step


def hf(args: argparse.Namespace) -> tuple[list[nn.Module], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    import transformers

    config = transformers.GPT2Config(
        vocab_size=args.vocab, n_positions=args.seq_len, n_embd=args.embed_dim, n_layer=args.depth,
        n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    config._attn_implementation = "sdpa"  # also its default; named so the comparison is SDPA vs SDPA
    model = transformers.GPT2LMHeadModel(config)

    def step(ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # HF shifts the labels itself (T-1 predictions from the same T-token forward pass as ours).
        loss: torch.Tensor = model(input_ids=ids, labels=ids).loss
        return loss

    return [model], step


def measure(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    torch.manual_seed(0)
    sides = {"ours (gpt)": ours(args), "transformers GPT2LMHeadModel": hf(args)}
    counts = {}
    runners = {}
    for name, (modules, step) in sides.items():
        params = list(dict.fromkeys(p for m in modules for p in m.parameters()))  # tied weights once
        counts[name] = sum(p.numel() for p in params)
        for m in modules:
            m.to(device).train()
        opt = torch.optim.AdamW(params, lr=1e-4, fused=device.type == "cuda")
        runners[name] = (step, opt)
    ids = torch.randint(0, args.vocab, (args.batch, args.seq_len + 1), device=device)
    x, y = ids[:, :-1], ids[:, 1:]
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.dtype == "bf16"
                else contextlib.nullcontext())

    def run(name: str, steps: int) -> float:
        step, opt = runners[name]
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = step(x, y)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return args.batch * args.seq_len * steps / (time.perf_counter() - start)

    for name in runners:
        run(name, args.warmup)
    rates: dict[str, list[float]] = {n: [] for n in runners}
    for _ in range(args.rounds):
        for name in runners:
            rates[name].append(run(name, args.steps))
    med = {n: statistics.median(r) for n, r in rates.items()}
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {label}; dtype {args.dtype}; model D={args.embed_dim} L={args.depth} H={args.heads} "
          f"T={args.seq_len} B={args.batch} V={args.vocab}")
    for n in runners:
        print(f"{n:32s} params {counts[n]:>12,d}  tokens/s {med[n]:>12,.0f}  (rounds: "
              f"{', '.join(f'{r:,.0f}' for r in rates[n])})")
    ours_name, hf_name = list(runners)
    paired = statistics.median(a / b for a, b in zip(rates[ours_name], rates[hf_name]))
    print(f"ratio ours / transformers: {med[ours_name] / med[hf_name]:.3f} (of medians); "
          f"{paired:.3f} (median of per-round ratios, robust to load changing between rounds)")
    backbone = sides[ours_name][0][2]
    flops = backbone.flops_per_token(args.seq_len, extra_params=args.vocab * args.embed_dim)  # type: ignore[operator]
    print(f"ours: {flops * med[ours_name] / 1e12:.3f} TFLOP/s model FLOPs (6N + attention, N incl. the tied head)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embed-dim", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    measure(args)


if __name__ == "__main__":
    main()
