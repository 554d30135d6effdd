"""A rough memory estimate of training a composed transformer, so ``check`` refuses what ``run`` cannot hold.

Read from the slots' ports (``embed_dim``, ``vocab_size``, ``max_positions``, ``seq_len``) and the backbone's
``depth``, without importing torch. The estimate is a lower bound (weights, gradients and AdamW state in
fp32, plus a few activations per layer), so a config it refuses cannot train on this machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from registry_core._contracts import ComposedSlot
from registry_core._errors import ConfigIssue
from registry_core.pipeline._train_config import TrainConfig

__all__ = ["machine_memory_bytes", "size_issues"]

#: Bytes per parameter while training: fp32 weights, gradients and AdamW's two moments.
_TRAIN_BYTES_PER_PARAM = 16
#: fp32 activations kept per token, per layer and per unit of width for the backward pass (a low count).
_ACTIVATIONS_PER_WIDTH = 8
_GIB = 2**30


def machine_memory_bytes() -> int:
    """This machine's physical memory (64 GiB where the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 64 * _GIB


def _int(slot: ComposedSlot | None, port: str) -> int | None:
    value = slot.value(port) if slot is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _parts(v: Mapping[str, int], batch: int) -> dict[str, int]:
    """Bytes of each piece of training: the layers', the embedding's and position table's weights, activations."""
    return {
        "layers": 12 * v["embed_dim"] ** 2 * v["depth"] * _TRAIN_BYTES_PER_PARAM,
        "embedding": v["vocab_size"] * v["embed_dim"] * _TRAIN_BYTES_PER_PARAM,
        "positions": v["max_positions"] * v["embed_dim"] * _TRAIN_BYTES_PER_PARAM,
        "activations": batch * v["seq_len"] * v["embed_dim"] * v["depth"] * _ACTIVATIONS_PER_WIDTH * 4,
    }


def size_issues(slots: Mapping[str, ComposedSlot], train: TrainConfig, limit: int | None = None) -> list[ConfigIssue]:
    """One issue when the estimate exceeds ``limit`` bytes (default: the machine's memory).

    It names the option whose reduction to 1 would shrink the estimate most (the absurd one).
    """
    backbone = slots.get("backbone")
    width = _int(backbone, "embed_dim")
    if backbone is None or width is None:
        return []
    where = {"embed_dim": "backbone", "depth": "backbone", "vocab_size": "tokenizer", "seq_len": "data",
             "max_positions": "backbone"}
    values = {
        "embed_dim": width,
        "depth": _int(backbone, "depth") or 1,
        "vocab_size": _int(slots.get("tokenizer"), "vocab_size") or 0,
        "max_positions": max(_int(backbone, "max_positions") or 0, _int(slots.get("positional"), "max_positions") or 0),
        "seq_len": _int(slots.get("data"), "seq_len") or 0,
    }
    batch = train.micro_batch(1)
    parts = _parts(values, batch)
    total = sum(parts.values())
    bound = machine_memory_bytes() if limit is None else limit
    if total <= bound:
        return []
    key = min((k for k in values if values[k] > 1),
              key=lambda k: sum(_parts({**values, k: 1}, batch).values()), default="embed_dim")
    detail = ", ".join(f"{name} {v / _GIB:.3g}" for name, v in parts.items())
    shown = ", ".join(f"{k}={v}" for k, v in values.items() if v)
    return [ConfigIssue(where[key], key, f"training needs at least {total / _GIB:.3g} GiB ({detail} GiB for {shown}, "
                        f"micro batch {batch}), more than the {bound / _GIB:.3g} GiB of memory of this machine; "
                        f"lower {key}")]
