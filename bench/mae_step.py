"""Benchmark (issue 10): MAE pretraining step images/s, ours (``mae`` + ``vit``) vs ``transformers`` ViTMAEForPreTraining.

One step is forward + backward + AdamW step on a batch of 6-band 224 x 224 chips, patch 16, mask ratio
0.75, at one config for both: encoder 6 x 384 wide, 6 heads, MLP 1536; decoder 4 x 256 wide, 8 heads,
MLP 1024; LayerNorm eps 1e-6, exact GELU, no dropout, norm_pix_loss off, SDPA attention. Ours is built
through the registry as a user would (``compose({...}).build(prepare=False)``; the ``zarr-chips`` store is
never opened) and gets ``{"patches": patchify(chips, 16), "positions": ..., "noise": ...}``, the patchify
inside the timed step; theirs gets ``pixel_values`` ``(B, 6, 224, 224)``. Each step both see the same
chips and the same noise, so both drop the same tokens. The two alternate in rounds (A B A B ...) so
load and clock drift on the machine hit both alike; prints the median images/s of each and the ratio.

    .venv/bin/python bench/mae_step.py                                  # CPU, batch 8 (a few minutes)
    .venv/bin/python bench/mae_step.py --device cuda                    # float32, TF32 matmuls off and on
    .venv/bin/python bench/mae_step.py --device cuda --dtype bfloat16   # bf16 autocast
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]
Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (chips (B, C, H, W), noise (B, N)) -> loss


def ours(args: argparse.Namespace) -> tuple[nn.Module, Step]:
    from registry_core import compose
    from registry_gfm.tokenizers.patch_layout import patchify, token_grid_positions

    config = {
        # prepare=False never opens the store: the path need not exist
        "data": {"use": "zarr-chips", "store": "bench-unused.zarr", "chip_size": args.size, "bands": BANDS},
        "tokenizer": {"use": "patch", "patch_size": args.patch, "bands": BANDS},
        "positional": {"use": "sincos-2d"},
        "backbone": {"use": "vit", "embed_dim": args.embed_dim, "depth": args.depth, "heads": args.heads,
                     "mlp_ratio": args.mlp / args.embed_dim, "layer_norm_eps": 1e-6, "dropout": 0.0,
                     "activation": "gelu"},
        "objective": {"use": "mae", "decoder_dim": args.decoder_dim, "decoder_depth": args.decoder_depth,
                      "decoder_heads": args.decoder_heads, "mlp_ratio": args.decoder_mlp / args.decoder_dim,
                      "mask_ratio": args.mask_ratio, "norm_pix_loss": False, "layer_norm_eps": 1e-6},
    }
    model = compose(config).build(prepare=False).model
    grid = args.size // args.patch
    positions = token_grid_positions((1, grid, grid), device=args.device)  # on the device, as the trainer moves them
    extra: dict[str, torch.Tensor] = {}
    if args.valid:  # what the patch tokenizer adds: every pixel usable, a full valid fraction
        extra = {"pixel_valid": torch.ones(args.batch, grid * grid, args.patch**2, dtype=torch.bool, device=args.device),
                 "valid_fraction": torch.ones(args.batch, grid * grid, device=args.device)}

    def step(chips: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        batch = {"patches": patchify(chips, args.patch), "positions": positions, "noise": noise, **extra}
        loss: torch.Tensor = model(batch)[0]
        return loss

    return model, step


def theirs(args: argparse.Namespace) -> tuple[nn.Module, Step]:
    import transformers

    config = transformers.ViTMAEConfig(
        hidden_size=args.embed_dim, num_hidden_layers=args.depth, num_attention_heads=args.heads,
        intermediate_size=args.mlp, decoder_hidden_size=args.decoder_dim,
        decoder_num_hidden_layers=args.decoder_depth, decoder_num_attention_heads=args.decoder_heads,
        decoder_intermediate_size=args.decoder_mlp, num_channels=len(BANDS), image_size=args.size,
        patch_size=args.patch, mask_ratio=args.mask_ratio, norm_pix_loss=False, layer_norm_eps=1e-6,
        hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, qkv_bias=True,
    )
    config._attn_implementation = "sdpa"  # also its default; named so the comparison is SDPA vs SDPA
    model = transformers.ViTMAEForPreTraining(config)

    def step(chips: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        loss: torch.Tensor = model(pixel_values=chips, noise=noise).loss
        return loss

    return model, step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def measure(args: argparse.Namespace, tf32: bool | None) -> dict[str, Any]:
    """One comparison: both models built, warmed up, then timed in alternating rounds."""
    device = torch.device(args.device)
    if tf32 is not None:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32  # the patch projection of theirs is a Conv2d
    sides: dict[str, tuple[nn.Module, Step, torch.optim.Optimizer]] = {}
    for name, make in (("ours", ours), ("theirs", theirs)):
        torch.manual_seed(0)
        model, step = make(args)
        model.to(device).train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05)
        sides[name] = (model, step, opt)
    gen = torch.Generator(device="cpu").manual_seed(1)
    tokens = (args.size // args.patch) ** 2
    pool = 4  # distinct batches, cycled; generated once so the timed loop does no RNG or host->device copies
    chips = [torch.randn(args.batch, len(BANDS), args.size, args.size, generator=gen).to(device) for _ in range(pool)]
    noises = [torch.rand(args.batch, tokens, generator=gen).to(device) for _ in range(pool)]
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.dtype == "bfloat16"
                else contextlib.nullcontext())
    first_loss: dict[str, float] = {}
    peak: dict[str, float] = {}

    def run(name: str, steps: int) -> float:
        """Images/s of ``steps`` training steps of one side; step ``i`` uses batch and noise ``i % pool``."""
        _, step, opt = sides[name]
        sync(device)
        start = time.perf_counter()
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = step(chips[i % pool], noises[i % pool])
            loss.backward()
            opt.step()
            if name not in first_loss:
                first_loss[name] = float(loss.detach())
        sync(device)
        return args.batch * steps / (time.perf_counter() - start)

    for name in sides:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        run(name, args.warmup)
        if device.type == "cuda":
            peak[name] = torch.cuda.max_memory_allocated(device) / 2**20
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name in sides:
            rates[name].append(run(name, args.steps))
    return {"rates": rates, "first_loss": first_loss, "peak": peak,
            "params": {name: trainable(m) for name, (m, _, _) in sides.items()}}


def report(args: argparse.Namespace, tf32: bool | None, result: dict[str, Any]) -> float:
    rates, names = result["rates"], ("ours", "theirs")
    label = {"ours": "ours (registry mae + vit)", "theirs": "transformers ViTMAEForPreTraining"}
    med = {n: statistics.median(rates[n]) for n in names}
    setting = "" if tf32 is None else f"; TF32 matmuls {'on' if tf32 else 'off'}"
    print(f"-- dtype {args.dtype}{' (autocast)' if args.dtype == 'bfloat16' else ''}{setting}")
    for n in names:
        mem = f"  peak {result['peak'][n]:,.0f} MiB" if n in result["peak"] else ""
        print(f"{label[n]:35s} params {result['params'][n]:>11,d}  images/s {med[n]:>9.2f}  "
              f"first loss {result['first_loss'][n]:.4f}{mem}  (rounds: {', '.join(f'{r:.2f}' for r in rates[n])})")
    ratio = med["ours"] / med["theirs"]
    paired = statistics.median(a / b for a, b in zip(rates["ours"], rates["theirs"]))
    print(f"ratio ours / transformers: {ratio:.3f} of the medians; {paired:.3f} median of the per-round ratios "
          f"(goal >= 1.1: {'met' if paired >= 1.1 else 'NOT met'})")
    return paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="bfloat16: torch.autocast around the forward pass (weights and AdamW stay float32)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round (default: cpu 3, cuda 20)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default: cpu 5, cuda 7)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps each first (default: cpu 2, cuda 10)")
    parser.add_argument("--tf32", choices=("off", "on", "both"), default="both",
                        help="cuda, float32: torch.backends.cuda.matmul.allow_tf32 (same for both models); "
                        "both: one comparison with each")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--valid", action="store_true", help="ours also gets the tokenizer's pixel_valid and "
                        "valid_fraction (all usable), so the cloud-aware loss does its masking work")
    # the model config; defaults are the issue's
    parser.add_argument("--size", type=int, default=224, help="chip side in pixels")
    parser.add_argument("--patch", type=int, default=16)
    parser.add_argument("--mask-ratio", type=float, default=0.75)
    parser.add_argument("--embed-dim", type=int, default=384)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--mlp", type=int, default=1536, help="encoder MLP hidden width")
    parser.add_argument("--decoder-dim", type=int, default=256)
    parser.add_argument("--decoder-depth", type=int, default=4)
    parser.add_argument("--decoder-heads", type=int, default=8)
    parser.add_argument("--decoder-mlp", type=int, default=1024, help="decoder MLP hidden width")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device (torch.cuda.is_available() is False)")
    args.steps = args.steps or (20 if cuda else 3)
    args.rounds = args.rounds or (7 if cuda else 5)
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    if cuda:
        dev = f"CUDA {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    else:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        dev = (f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads, "
               f"{os.cpu_count()} cores, load average {load:.1f}")
    print(f"device: {dev}; torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    print(f"config: {len(BANDS)} bands {args.size}x{args.size}, patch {args.patch} "
          f"({(args.size // args.patch) ** 2} tokens), batch {args.batch}, mask ratio {args.mask_ratio}; "
          f"encoder {args.depth} x {args.embed_dim} wide, {args.heads} heads, MLP {args.mlp}; "
          f"decoder {args.decoder_depth} x {args.decoder_dim} wide, {args.decoder_heads} heads, MLP {args.decoder_mlp}; "
          "LayerNorm eps 1e-6, exact GELU, dropout 0, norm_pix_loss off, SDPA; AdamW")
    print(f"ours' batch: patches, positions, noise{', pixel_valid, valid_fraction' if args.valid else ''}; "
          "theirs: pixel_values, noise")
    print(f"timing: {args.warmup} warm-up steps each, then {args.rounds} rounds of {args.steps} steps, "
          "alternating ours / theirs; images/s are medians over rounds")
    if not cuda:
        print("note: this is a CPU run (use --device cuda on a GPU machine); with the cores busy (load average "
              "above the core count) every multi-threaded op waits for a descheduled thread: try --threads 1")
    settings: list[bool | None] = [None]
    if cuda and args.dtype == "float32":
        choice: dict[str, list[bool | None]] = {"off": [False], "on": [True], "both": [False, True]}
        settings = choice[args.tf32]
    for tf32 in settings:
        report(args, tf32, measure(args, tf32))


if __name__ == "__main__":
    main()
