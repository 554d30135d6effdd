"""Benchmark: the Prithvi encoder loaded by the ``prithvi`` weights against the same weights in HF ``ViTMAEModel``.

Prithvi-100M (V1) shapes with random weights: 768 wide, 12 blocks of 12 heads, 16-pixel patches over
224 x 224 x 6 bands. Ours is ``PrithviWeights(...).encoder()`` (Conv3d patches, 3-D sin-cos positions, the
shared Transformer); theirs is ``transformers.ViTMAEModel`` with ``mask_ratio=0`` (and the identity as its
masking noise, so every token stays in place) loaded with the same tensors through ``HF_VITMAE_V5``.
HF's ViTMAE is 2-D, so two configurations run:

- ``1 frame``: both sides see the same 197 tokens per sample: the fair comparison, and an output check
  (ours with MAE's 2-D table instead of the 3-D one must give HF's features).
- ``N frames``: ours attends over all N x 196 + 1 tokens of a sample jointly (as Prithvi does); HF cannot,
  so it runs the frames folded into the batch (N images of 197 tokens each: less attention work).
- ``N frames`` against timm: the fair N-frame anchor. Prithvi V1 itself is built from timm's ``Block``; the
  reference here is its encoder forward rebuilt from the same checkpoint tensors (a Conv3d patch embed of kernel
  (1, p, p), the cls token and the checkpoint's 3-D ``pos_embed`` added as Prithvi does, 12 timm ``Block``s,
  the final ``norm``; LayerNorm eps 1e-5 as Prithvi's ``nn.LayerNorm``), checked against ours (max |ours - timm|) and timed on the same N x 196 + 1 tokens.
  Needs ``timm`` (``pip install timm``, not a dependency of the project); without it the row is skipped.

All run in one process under ``torch.inference_mode``; ours and the reference alternate within each round;
prints samples/s (medians of the rounds) and ours / theirs.

    .venv/bin/python bench/prithvi_encoder.py                           # CPU, batch 4, 3 frames
    .venv/bin/python bench/prithvi_encoder.py --device cuda --batch 32 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from _timing import (  # bench/_timing.py (this script's folder is on sys.path)
    add_round_options,
    parse_round_options,
    timed,
)
from safetensors.torch import save_file
from torch import nn

from registry_core.interfaces import ModelParts
from registry_core.nn import part_tensors
from registry_gfm.positions.sincos import sincos_2d_table, sincos_3d_table
from registry_gfm.weights._prithvi_keys import HF_VITMAE_V5
from registry_gfm.weights.prithvi import PrithviWeights
from registry_gfm.weights.specs import PrithviConfig


def random_v1_checkpoint(width: int, depth: int, frames: int, patch: int, bands: int) -> dict[str, torch.Tensor]:
    """Prithvi V1 keys and shapes with random values; ``pos_embed`` is Prithvi's fixed 3-D sin-cos table.

    Our loader ignores ``pos_embed`` (it recomputes the table for any grid); the timm reference adds it as stored.
    """
    g = torch.Generator().manual_seed(0)
    hidden, side = 4 * width, 224 // patch

    def rnd(*shape: int, std: float = 0.02) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    out = {"patch_embed.proj.weight": rnd(width, bands, 1, patch, patch), "patch_embed.proj.bias": rnd(width),
           "cls_token": rnd(1, 1, width), "pos_embed": sincos_3d_table(frames, side, side, width, cls_token=True)[None],
           "norm.weight": 1 + rnd(width), "norm.bias": rnd(width)}
    for i in range(depth):
        p = f"blocks.{i}."
        out.update({p + "norm1.weight": 1 + rnd(width), p + "norm1.bias": rnd(width),
                    p + "attn.qkv.weight": rnd(3 * width, width), p + "attn.qkv.bias": rnd(3 * width),
                    p + "attn.proj.weight": rnd(width, width), p + "attn.proj.bias": rnd(width),
                    p + "norm2.weight": 1 + rnd(width), p + "norm2.bias": rnd(width),
                    p + "mlp.fc1.weight": rnd(hidden, width), p + "mlp.fc1.bias": rnd(hidden),
                    p + "mlp.fc2.weight": rnd(width, hidden), p + "mlp.fc2.bias": rnd(width)})
    return out


#: Prithvi's code builds its blocks with ``norm_layer=nn.LayerNorm``: eps 1e-5 (timm's own ViT passes 1e-6).
PRITHVI_EPS = 1e-5


def hf_model(ours: nn.Module, args: argparse.Namespace) -> nn.Module:
    """``ViTMAEModel`` of the same sizes holding ours' tensors, and MAE's fixed 2-D position table."""
    from transformers import ViTMAEConfig, ViTMAEModel

    cfg = ViTMAEConfig(hidden_size=args.embed_dim, num_hidden_layers=args.depth, num_attention_heads=args.heads,
                       intermediate_size=4 * args.embed_dim, image_size=224, patch_size=args.patch,
                       num_channels=args.bands, mask_ratio=0.0, layer_norm_eps=PRITHVI_EPS, hidden_act="gelu",
                       qkv_bias=True, attn_implementation="sdpa")
    model = ViTMAEModel(cfg)
    parts = ModelParts(ours.embed, ours.positional, ours.backbone)
    tensors = {k: v.detach() for k, v in part_tensors(parts).items()}
    theirs = HF_VITMAE_V5.convert(tensors, "theirs")
    state = {k.removeprefix("vit."): v for k, v in theirs.tensors.items()}
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys or set(result.missing_keys) != {"embeddings.position_embeddings"}:
        raise SystemExit(f"HF ViTMAE did not take the weights: {result}")
    side = 224 // args.patch  # a fresh ViTMAEModel may leave its table at zeros: set MAE's
    with torch.no_grad():
        model.embeddings.position_embeddings.copy_(sincos_2d_table(side, side, args.embed_dim, cls_token=True)[None])
    return model


def check_outputs(ours: nn.Module, theirs: nn.Module, chips: torch.Tensor, noise: torch.Tensor) -> float:
    """Max |ours - HF| at 1 frame, ours with MAE's 2-D table (HF's) in place of the 3-D one."""
    side = chips.shape[-1] // ours.embed.patch
    table = sincos_2d_table(side, side, ours.backbone.embed_dim).to(chips.device, chips.dtype)
    mine = ours.backbone(ours.embed(chips.unsqueeze(2)) + table)
    hf = theirs(chips, noise=noise).last_hidden_state
    return float((mine.float() - hf.float()).abs().max())


class TimmPrithvi(nn.Module):
    """Prithvi V1's encoder forward on timm ``Block``s, with Prithvi V1's parameter names (loads its checkpoint)."""

    def __init__(self, width: int, depth: int, heads: int, patch: int, bands: int, tokens: int) -> None:
        from timm.models.vision_transformer import Block

        super().__init__()
        self.patch_embed = nn.ModuleDict({"proj": nn.Conv3d(bands, width, (1, patch, patch), (1, patch, patch))})
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, width), requires_grad=False)
        self.blocks = nn.Sequential(*(Block(width, heads, mlp_ratio=4, qkv_bias=True,
                                            norm_layer=partial(nn.LayerNorm, eps=PRITHVI_EPS))
                                      for _ in range(depth)))
        self.norm = nn.LayerNorm(width, eps=PRITHVI_EPS)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed["proj"](chips).flatten(2).transpose(1, 2) + self.pos_embed[:, 1:]  # (t, h, w) order
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        out: torch.Tensor = self.norm(self.blocks(torch.cat([cls, x], dim=1)))
        return out


def timm_model(checkpoint: dict[str, torch.Tensor], args: argparse.Namespace) -> nn.Module | str:
    """The timm reference holding the checkpoint's tensors, or why it cannot be built (timm missing)."""
    try:
        import timm.models.vision_transformer  # noqa: F401
    except (ImportError, RuntimeError) as e:  # RuntimeError: a torchvision that does not match torch
        return f"{type(e).__name__}: {e}"
    model = TimmPrithvi(args.embed_dim, args.depth, args.heads, args.patch, args.bands,
                        checkpoint["pos_embed"].shape[1])
    model.load_state_dict(checkpoint, strict=True)
    return model.eval()


def measure(args: argparse.Namespace) -> None:
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    checkpoint = random_v1_checkpoint(args.embed_dim, args.depth, args.frames, args.patch, args.bands)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prithvi_v1_random.safetensors"
        save_file(checkpoint, str(path))
        weights = PrithviWeights(PrithviConfig(path=str(path), heads=args.heads, patch_size=args.patch))
        ours = weights.encoder()
    theirs = hf_model(ours, args).eval()
    ours, theirs = ours.to(device, dtype), theirs.to(device, dtype)
    ref = timm_model(checkpoint, args)
    ref = ref.to(device, dtype) if isinstance(ref, nn.Module) else ref
    b, t, tokens = args.batch, args.frames, (224 // args.patch) ** 2
    chips = torch.randn(b, args.bands, t, 224, 224, device=device, dtype=dtype)
    one = chips[:, :, 0].contiguous()
    folded = chips.permute(0, 2, 1, 3, 4).reshape(b * t, args.bands, 224, 224)
    order = torch.arange(tokens, device=device, dtype=torch.float32)
    noise_1, noise_t = order.expand(b, -1), order.expand(b * t, -1)  # ascending noise: nothing is shuffled
    with torch.inference_mode():
        diff = check_outputs(ours, theirs, one, noise_1)
        cases: dict[tuple[str, str], tuple[Callable[[], object], Callable[[], object]]] = {
            ("1 frame", "HF ViTMAE"): (lambda: ours(one.unsqueeze(2)), lambda: theirs(one, noise=noise_1)),
            (f"{t} frames", "HF ViTMAE folded"): (lambda: ours(chips), lambda: theirs(folded, noise=noise_t)),
        }
        if isinstance(ref, nn.Module):
            timm_diff = float((ours(chips).float() - ref(chips).float()).abs().max())
            cases[(f"{t} frames", "timm Blocks")] = (lambda: ours(chips), lambda: ref(chips))
        times: dict[tuple[str, str], tuple[list[float], list[float]]] = {name: ([], []) for name in cases}
        for mine, other in cases.values():
            timed(mine, device, args.warmup)
            timed(other, device, args.warmup)
        for _ in range(args.rounds):
            for key, (mine, other) in cases.items():
                times[key][0].append(timed(mine, device, args.repeats))
                times[key][1].append(timed(other, device, args.repeats))
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {label}; {args.dtype}; Prithvi V1 encoder D={args.embed_dim} L={args.depth} H={args.heads} "
          f"patch={args.patch} bands={args.bands} 224x224; batch {b}; medians of {args.rounds} rounds x {args.repeats}")
    print(f"output check at 1 frame (ours with HF's 2-D table): max |ours - HF| = {diff:.2e}")
    if isinstance(ref, nn.Module):
        print(f"output check at {t} frames (timm Blocks, the checkpoint's 3-D pos_embed): "
              f"max |ours - timm| = {timm_diff:.2e}")
    else:
        print(f"timm is not importable ({ref}): the {t}-frame timm row is skipped (pip install timm enables it)")
    print(f"{'config':10s} {'theirs':17s} {'ours':>10s} {'theirs':>10s} {'ours/theirs':>12s} {'per round':>10s}"
          "  (samples/s)")
    for (name, label), (ours_s, other_s) in times.items():
        m, o = statistics.median(ours_s), statistics.median(other_s)
        paired = statistics.median(y / x for x, y in zip(ours_s, other_s))  # theirs time / ours time, round by round
        print(f"{name:10s} {label:17s} {b / m:>10.2f} {b / o:>10.2f} {o / m:>12.3f} {paired:>10.3f}")
    print(f"1 frame: both sides 1 + {tokens} tokens per sample. {t} frames: ours attends over 1 + {t * tokens} "
          f"tokens per sample; HF ViTMAE is 2-D, so it runs the {t} frames folded into the batch ({t} x (1 + "
          f"{tokens}) tokens, less attention work); timm Blocks run the same 1 + {t * tokens} tokens (the fair "
          f"{t}-frame anchor). per round: median of the ratios measured side by side")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embed-dim", type=int, default=768)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--patch", type=int, default=16)
    parser.add_argument("--bands", type=int, default=6, choices=(6,), help="Prithvi's six HLS bands")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    add_round_options(parser)
    measure(parse_round_options(parser))


if __name__ == "__main__":
    main()
