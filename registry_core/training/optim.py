"""AdamW with decay groups, and the learning-rate schedule (linear warm-up, then cosine to min_lr)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from registry_core.pipeline._train_config import TrainConfig

__all__ = ["build_optimizer", "decay_groups", "layer_decay_scales", "lr_at", "set_lr"]

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.LocalResponseNorm,
    nn.modules.batchnorm._NormBase,
)


def _is_norm(module: nn.Module) -> bool:
    # Hand-written norms (e.g. a custom RMSNorm) are recognised by their class name.
    return isinstance(module, _NORM_TYPES) or "norm" in type(module).__name__.lower()


def decay_groups(model: nn.Module, no_decay: Iterable[str]) -> tuple[list[str], list[str]]:
    """Names of the trainable parameters with and without weight decay.

    ``no_decay`` picks the exempt families: ``norms`` (parameters of normalisation layers), ``biases``
    (parameters named ``bias``) and ``embeddings`` (tables of ``nn.Embedding``). A tied parameter is
    exempt when any module that holds it is.
    """
    families = set(no_decay)
    exempt: set[int] = set()
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if (
                ("norms" in families and _is_norm(module))
                or ("biases" in families and pname == "bias")
                or ("embeddings" in families and isinstance(module, (nn.Embedding, nn.EmbeddingBag)))
            ):
                exempt.add(id(p))
    decay: list[str] = []
    keep: list[str] = []
    for name, p in model.named_parameters():  # deduplicates tied parameters
        if p.requires_grad:
            (keep if id(p) in exempt else decay).append(name)
    return decay, keep


def build_optimizer(model: nn.Module, config: TrainConfig, fused: bool = False) -> torch.optim.AdamW:
    """AdamW over the trainable parameters: one group with ``config.weight_decay``, one without.

    A model with ``lr_scales()`` (``{id(parameter): factor}``, e.g. layer-wise learning-rate decay) splits
    each group by factor; a group's ``lr_scale`` multiplies the scheduled learning rate (see ``set_lr``).
    """
    decay, keep = decay_groups(model, config.no_decay)
    if not decay and not keep:
        raise ValueError(f"model {type(model).__name__} has no trainable parameters (all requires_grad=False)")
    params = dict(model.named_parameters())
    scales_of = getattr(model, "lr_scales", None)
    scales: dict[int, float] = dict(scales_of()) if callable(scales_of) else {}
    groups: list[dict[str, Any]] = []
    for names, wd, label in ((decay, config.weight_decay, "decay"), (keep, 0.0, "no_decay")):
        by_scale: dict[float, list[nn.Parameter]] = {}
        for n in names:
            by_scale.setdefault(float(scales.get(id(params[n]), 1.0)), []).append(params[n])
        for scale in sorted(by_scale, reverse=True):
            name = label if scale == 1.0 else f"{label}@{scale:.4g}"
            groups.append({"params": by_scale[scale], "weight_decay": wd, "name": name, "lr_scale": scale})
    extra = {"fused": True} if fused else {}
    return torch.optim.AdamW(groups, lr=lr_at(0, config), betas=config.betas, eps=config.eps, **extra)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate to ``lr`` times the group's ``lr_scale`` (1 when it has none)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * float(group.get("lr_scale", 1.0))


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, then cosine from lr to min_lr."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    decay_steps = config.steps - config.warmup_steps
    if decay_steps <= 0:
        return config.lr
    progress = min((step - config.warmup_steps) / decay_steps, 1.0)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.lr - config.min_lr)


def layer_decay_scales(parts: Any, decay: float) -> dict[int, float]:
    """Layer-wise learning-rate decay (BEiT / MAE finetuning): block ``i`` of ``L`` trains at ``decay^(L - i)``, the
    embedding, positions and a backbone's prefix tokens (cls) at ``decay^(L + 1)``, the final norm and the head at 1;
    ``{id(parameter): scale}`` for ``build_optimizer``, empty when ``decay`` is 1."""
    from torch import nn

    if decay >= 1.0:
        return {}
    blocks = getattr(parts.backbone, "blocks", None)
    depth = len(blocks) if blocks is not None else 0
    out: dict[int, float] = {}
    for module in (parts.embed, parts.positional):
        if isinstance(module, nn.Module):
            out.update({id(p): decay ** (depth + 1) for p in module.parameters()})
    for name, p in parts.backbone.named_parameters():
        if name.startswith("blocks."):
            out[id(p)] = decay ** (depth - int(name.split(".")[1]))
        elif name.startswith("prefix"):
            out[id(p)] = decay ** (depth + 1)  # cls token and its position: with the embedding
    return out
