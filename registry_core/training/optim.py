"""AdamW with decay groups, and the learning-rate schedule (linear warm-up, then cosine to min_lr)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from registry_core._train_config import TrainConfig

__all__ = ["build_optimizer", "decay_groups", "lr_at"]

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
    """AdamW over the trainable parameters: one group with ``config.weight_decay``, one without."""
    decay, keep = decay_groups(model, config.no_decay)
    if not decay and not keep:
        raise ValueError(f"model {type(model).__name__} has no trainable parameters (all requires_grad=False)")
    params = dict(model.named_parameters())
    groups: list[dict[str, Any]] = []
    if decay:
        groups.append({"params": [params[n] for n in decay], "weight_decay": config.weight_decay, "name": "decay"})
    if keep:
        groups.append({"params": [params[n] for n in keep], "weight_decay": 0.0, "name": "no_decay"})
    extra = {"fused": True} if fused else {}
    return torch.optim.AdamW(groups, lr=lr_at(0, config), betas=config.betas, eps=config.eps, **extra)


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, then cosine from lr to min_lr."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    decay_steps = config.steps - config.warmup_steps
    if decay_steps <= 0:
        return config.lr
    progress = min((step - config.warmup_steps) / decay_steps, 1.0)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.lr - config.min_lr)
