"""Benchmark (issue 9): a ViT-sized encoder over the shared Transformer, all tokens against 25% kept.

MAE runs its encoder on the kept patches only; ``Transformer(..., keep_index=...)`` gathers them before
the blocks, so the pass should cost about the kept fraction of the full one (a bit more: the additive
positions are still added to every token, and attention is quadratic, which favours the short pass).
Both variants run in one process and alternate within each round, so load on the machine hits both
alike; prints the median times side by side with the ratio kept / full.

    .venv/bin/python bench/encoder_token_drop.py                     # ViT-tiny-ish on CPU
    .venv/bin/python bench/encoder_token_drop.py --device cuda --embed-dim 768 --heads 12 --batch 256
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch
from _timing import (  # bench/_timing.py (this script's folder is on sys.path)
    add_round_options,
    parse_round_options,
    timed,
)
from torch import nn

from registry_core.nn import Transformer, grid_positions, sincos_encoding


class SinCos2d(nn.Module):
    """Fixed MAE-style 2-D sin-cos positions of a square patch grid, added to the patch embeddings."""

    mode = "additive"
    grid = 2
    table: torch.Tensor

    def __init__(self, embed_dim: int, side: int) -> None:
        super().__init__()
        pos = grid_positions((side, side))
        self.register_buffer("table", sincos_encoding(pos, (embed_dim // 2, embed_dim // 2), axes=(1, 0)))

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.table.to(x.dtype)  # (T, D), broadcast over the batch


def measure(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    torch.manual_seed(0)
    side = round(args.tokens**0.5)
    if side * side != args.tokens:
        raise SystemExit(f"--tokens must be a square number of patches (e.g. 196 = 14 x 14), got {args.tokens}")
    model = Transformer(args.embed_dim, args.depth, args.heads, causal=False).to(device)
    positional = SinCos2d(args.embed_dim, side).to(device)
    x = torch.randn(args.batch, args.tokens, args.embed_dim, device=device)
    kept = max(1, round(args.tokens * args.keep))
    keep_index = torch.rand(args.batch, args.tokens, device=device).argsort(dim=1)[:, :kept]  # (B, kept)

    def forward(index: torch.Tensor | None) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                model(x, positional, keep_index=index)

        return run

    def train_step(index: torch.Tensor | None) -> Callable[[], None]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            model(x, positional, keep_index=index).pow(2).mean().backward()

        return run

    cases = {
        "forward": (forward(None), forward(keep_index)),
        "forward+backward": (train_step(None), train_step(keep_index)),
    }
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in cases}
    for full, dropped in cases.values():  # warm-up
        for fn in (full, dropped):
            timed(fn, device, args.warmup)
    for _ in range(args.rounds):
        for name, (full, dropped) in cases.items():
            times[name][0].append(timed(full, device, args.repeats))
            times[name][1].append(timed(dropped, device, args.repeats))
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {label}; encoder D={args.embed_dim} L={args.depth} H={args.heads} tokens={args.tokens} "
          f"B={args.batch}; kept {kept} of {args.tokens} tokens ({kept / args.tokens:.0%}); "
          f"medians of {args.rounds} rounds x {args.repeats}")
    print(f"{'pass':18s} {'all tokens':>12s} {'kept only':>12s} {'kept / all':>11s} {'per round':>10s}")
    for name, (full, dropped) in times.items():
        f, k = statistics.median(full), statistics.median(dropped)
        paired = statistics.median(b / a for a, b in zip(full, dropped))  # robust to load changing between rounds
        print(f"{name:18s} {f * 1e3:>9.1f} ms {k * 1e3:>9.1f} ms {k / f:>11.3f} {paired:>10.3f}")
    print("kept / all: ratio of the medians; per round: median of the ratios measured side by side in one round")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embed-dim", type=int, default=192)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=196, help="patches per image (a square: 196 = 14 x 14)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--keep", type=float, default=0.25, help="fraction of tokens kept (MAE: 0.25)")
    add_round_options(parser)
    measure(parse_round_options(parser))


if __name__ == "__main__":
    main()
