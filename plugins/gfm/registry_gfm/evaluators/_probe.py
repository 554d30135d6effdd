"""The linear-probe protocol of MAE (He et al. 2021, appendix A.2) on precomputed frozen features.

The probe is ``BatchNorm1d(D, affine=False)`` then ``Linear(D, classes)``: the normalisation without learned
scale or shift keeps the probe linear in the features while removing their scale, which differs a lot between
encoders. It is trained with SGD (momentum 0.9, no weight decay; MAE uses LARS at its 16k batch, which plain
SGD matches at small batches) and cross-entropy, the learning rate decayed by a half cosine per step, the
weights initialised as MAE's (normal, std 0.01; bias 0). The batch-norm statistics are a cumulative average
over every training batch (``momentum=None``), so evaluation normalises by the training features' mean and
variance. Shuffling and initialisation use their own generators seeded by ``seed``: the same inputs give
the same probe, and the global torch RNG is untouched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ProbeResult", "features", "fit_linear_probe", "macro_f1", "pool_tokens", "prefix_count"]


@dataclass
class ProbeResult:
    """Scores of a fitted probe on the validation features (``train_accuracy`` on the training ones)."""

    accuracy: float
    #: Mean F1 over the classes present in the validation truth or predictions (see :func:`macro_f1`).
    macro_f1: float
    #: F1 of each class present in the validation truth or predictions, by class index.
    per_class_f1: dict[int, float]
    train_accuracy: float
    #: The fitted probe (eval mode, on the CPU), for reuse.
    probe: nn.Module | None = field(default=None, repr=False, compare=False)


def macro_f1(y_true: Sequence[int] | np.ndarray | torch.Tensor, y_pred: Sequence[int] | np.ndarray | torch.Tensor,
             classes: int) -> tuple[float, dict[int, float]]:
    """Macro-averaged F1 and the F1 of each class.

    F1 of class c is ``2 TP / (2 TP + FP + FN)``. A class absent from both the truth and the predictions has
    no F1 (0/0): it is left out of the average and of the per-class dict, so a validation split missing a
    class is not penalised for it. A class that is predicted but never true (or true but never predicted)
    has F1 0 and counts. Returns ``(0.0, {})`` for empty inputs.
    """
    t = np.asarray(torch.as_tensor(y_true).cpu(), dtype=np.int64).ravel()
    p = np.asarray(torch.as_tensor(y_pred).cpu(), dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"macro_f1: {t.size} true labels but {p.size} predictions")
    per_class: dict[int, float] = {}
    for c in range(classes):
        tp = int(np.sum((t == c) & (p == c)))
        fp = int(np.sum((t != c) & (p == c)))
        fn = int(np.sum((t == c) & (p != c)))
        if tp + fp + fn == 0:
            continue
        per_class[c] = 2 * tp / (2 * tp + fp + fn)
    return (float(np.mean(list(per_class.values()))) if per_class else 0.0), per_class


def _as_features(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(x).detach().float().cpu()
    if t.ndim != 2:
        raise ValueError(f"linear probe: {name} must be (N, D) features, got shape {tuple(t.shape)}")
    return t


def _as_labels(y: Any, n: int, classes: int, name: str) -> torch.Tensor:
    t = torch.as_tensor(y).detach().long().cpu().ravel()
    if t.numel() != n:
        raise ValueError(f"linear probe: {name} has {t.numel()} labels for {n} feature rows")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= classes):
        raise ValueError(f"linear probe: {name} holds labels {sorted(set(t.tolist()))[:10]} outside "
                         f"0..{classes - 1} (classes={classes})")
    return t


def fit_linear_probe(
    train_x: Any,
    train_y: Any,
    val_x: Any,
    val_y: Any,
    *,
    classes: int,
    epochs: int = 90,
    lr: float = 0.1,
    batch_size: int = 256,
    seed: int = 0,
) -> ProbeResult:
    """Fit the probe on ``(train_x (N, D), train_y (N,))`` and score it on ``(val_x, val_y)``.

    Arrays or tensors; labels are class indices in ``0..classes-1``. Runs on the CPU (the features are
    small); deterministic for a given ``seed``.
    """
    if classes < 2:
        raise ValueError(f"linear probe: needs at least 2 classes, got {classes}")
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"linear probe: epochs, batch_size and lr must be positive, got {epochs}, {batch_size}, {lr}")
    tx, vx = _as_features(train_x, "train_x"), _as_features(val_x, "val_x")
    if tx.shape[0] < 2:
        raise ValueError(f"linear probe: needs at least 2 training samples, got {tx.shape[0]}")
    if vx.shape[0] == 0:
        raise ValueError("linear probe: no validation samples")
    if tx.shape[1] != vx.shape[1]:
        raise ValueError(f"linear probe: train features have {tx.shape[1]} dims, val features {vx.shape[1]}")
    ty = _as_labels(train_y, tx.shape[0], classes, "train_y")
    vy = _as_labels(val_y, vx.shape[0], classes, "val_y")

    dim = tx.shape[1]
    init = torch.Generator().manual_seed(seed)
    norm = nn.BatchNorm1d(dim, affine=False, momentum=None)
    with torch.random.fork_rng(devices=[]):  # Linear's own init draws from the global RNG; keep that untouched
        head = nn.Linear(dim, classes)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=init) * 0.01)
        head.bias.zero_()
    probe = nn.Sequential(norm, head)
    optim = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=0.0)
    order = torch.Generator().manual_seed(seed + 1)
    n = tx.shape[0]
    bs = min(batch_size, n)
    steps_per_epoch = n // bs if n % bs < 2 else n // bs + 1  # a last batch of 1 cannot be batch-normed
    total = epochs * steps_per_epoch
    step = 0
    probe.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=order)
        for b in range(steps_per_epoch):
            idx = perm[b * bs:(b + 1) * bs]
            for group in optim.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(probe(tx[idx]), ty[idx])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            step += 1
    probe.eval()
    with torch.no_grad():
        train_pred = probe(tx).argmax(dim=1)
        val_pred = probe(vx).argmax(dim=1)
    macro, per_class = macro_f1(vy, val_pred, classes)
    return ProbeResult(
        accuracy=float((val_pred == vy).float().mean()),
        macro_f1=macro,
        per_class_f1=per_class,
        train_accuracy=float((train_pred == ty).float().mean()),
        probe=probe,
    )


def prefix_count(encoder: Any, chips: torch.Tensor, tokens: int) -> int:
    """How many leading tokens of the encoder's output are prefix (cls) tokens, not patches.

    Read from ``num_prefix_tokens`` (or ``prefix_tokens``) of the encoder or its ``backbone`` when set, else
    worked out from the patch count that the encoder's ``patch_size`` (or ``patch``) and ``tubelet`` give the
    chips' size (tokens beyond it are prefix), else assumed 1 (an MAE-style cls token).
    """
    for owner in (encoder, getattr(encoder, "backbone", None)):
        for name in ("num_prefix_tokens", "prefix_tokens"):
            value = getattr(owner, name, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    patch = getattr(encoder, "patch_size", getattr(encoder, "patch", None))
    tubelet = getattr(encoder, "tubelet", 1)
    if isinstance(patch, int) and isinstance(tubelet, int):
        t = chips.shape[2] if chips.ndim == 5 else 1
        n = (t // tubelet) * (chips.shape[-2] // patch) * (chips.shape[-1] // patch)
        if n <= tokens:
            return tokens - n
    return 1


def features(
    encoder: Any,
    chips: torch.Tensor,
    pool: Literal["cls", "mean"] = "cls",
    *,
    prefix_tokens: int | None = None,
    **meta: Any,
) -> torch.Tensor:
    """Frozen features ``(B, D)`` of chips ``(B, C, T, H, W)`` or ``(B, C, H, W)``.

    ``pool="cls"``: the first token of the encoder's ``(B, 1+N, D)`` output; ``"mean"``: the mean of the
    patch tokens (prefix tokens left out). ``prefix_tokens`` overrides :func:`prefix_count`; ``meta``
    (``time``, ``lonlat``, ``gsd``) is passed to the encoder. Runs without gradients, in eval mode; the
    encoder's train/eval mode is restored afterwards.
    """
    if pool not in ("cls", "mean"):
        raise ValueError(f"features: pool must be 'cls' or 'mean', got {pool!r}")
    was_training = bool(getattr(encoder, "training", False))
    if hasattr(encoder, "eval"):
        encoder.eval()
    try:
        with torch.no_grad():
            tokens = encoder(chips, **meta)
    finally:
        if hasattr(encoder, "train"):
            encoder.train(was_training)
    prefix = prefix_tokens
    if prefix is None and isinstance(tokens, torch.Tensor) and tokens.ndim == 3:
        prefix = prefix_count(encoder, chips, tokens.shape[1])
    return pool_tokens(tokens, pool, 1 if prefix is None else prefix)


def pool_tokens(tokens: torch.Tensor, pool: Literal["cls", "mean"], prefix: int) -> torch.Tensor:
    """``(B, prefix + N, D)`` -> ``(B, D)``: the first (cls) token, or the mean of the ``N`` patch tokens."""
    if tokens.ndim != 3:
        raise ValueError(f"features: the encoder returned shape {tuple(tokens.shape)}, expected (B, tokens, D)")
    if pool not in ("cls", "mean"):
        raise ValueError(f"features: pool must be 'cls' or 'mean', got {pool!r}")
    if pool == "cls":
        if prefix < 1:
            raise ValueError("features: pool='cls' needs an encoder with a cls token; this one has none "
                             "(use pool='mean')")
        return tokens[:, 0]
    if tokens.shape[1] <= prefix:
        raise ValueError(f"features: the encoder returned {tokens.shape[1]} tokens, all prefix; no patch tokens")
    return tokens[:, prefix:].mean(dim=1)
