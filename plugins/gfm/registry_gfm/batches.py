"""What the imagery evaluators and the report share: batches of tokenized samples, patch grids, chips, band names."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from registry_core.atomic import path_inside
from registry_gfm.tokenizers.patch_layout import grid_from_positions, unpatchify

__all__ = ["band_names", "batches", "chips_of", "grid_of", "in_run_dir", "model_device", "sample_noise"]


def model_device(parts: Any) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    for part in parts.named().values():
        params = getattr(part, "parameters", None)
        if callable(params):
            for p in params():
                return p.device
    return torch.device("cpu")


def _stack(values: list[Any]) -> Any:
    if all(isinstance(v, torch.Tensor | np.ndarray | int | float | bool | np.number) for v in values):
        tensors = [torch.as_tensor(v) for v in values]
        if all(t.shape == tensors[0].shape for t in tensors):
            return torch.stack(tensors)
    return values  # band names, strings, ragged things: a list


def collate(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack each key that every item has (tensors, arrays, numbers); anything else stays a list."""
    keys = [k for k in items[0] if all(k in it for it in items)]
    return {k: _stack([it[k] for it in items]) for k in keys}


def batches(
    evaluator: str, dataset: Any, batch_size: int, tokenizer: Any = None, limit: int | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index of the batch's first sample, batch)`` over the first ``limit`` samples (None: all).

    Items must be ``patch`` tokens (``patches``, ``positions``, ...), as a data source with an attached
    tokenizer serves them; raw chips (``pixels``) are encoded with ``tokenizer.encode`` here.
    """
    n = len(dataset) if limit is None else min(len(dataset), limit)
    for start in range(0, n, batch_size):
        items = []
        for i in range(start, min(start + batch_size, n)):
            item = dataset[i]
            if not isinstance(item, Mapping):
                raise TypeError(f"{evaluator}: dataset items must be dicts of patch tokens, got {type(item).__name__}")
            if "patches" not in item:
                encode = getattr(tokenizer, "encode", None)
                if "pixels" not in item or not callable(encode):
                    raise KeyError(f"{evaluator}: dataset items need 'patches' (patch tokens, from a 'patch' "
                                   f"tokenizer) or 'pixels' and a tokenizer with encode(); got keys {sorted(item)}")
                item = encode(item)
            items.append(item)
        yield start, collate(items)


def grid_of(batch: Mapping[str, Any]) -> tuple[int, int, int]:
    """The (t, h, w) patch grid of a batch, from its token ``positions``."""
    pos = batch.get("positions")
    if not isinstance(pos, torch.Tensor):
        raise KeyError("the batch has no token 'positions' to lay its patches out by")
    return grid_from_positions(pos, int(batch["patches"].shape[1]))


def chips_of(patches: torch.Tensor, embed: Any, grid: Sequence[int]) -> torch.Tensor:
    """``(B, N, tubelet·p·p·C)`` patch vectors -> ``(B, C, T, H, W)`` chips, sized by the patch embedding."""
    return unpatchify(patches, int(embed.patch), int(embed.tubelet), int(embed.channels), grid)


def sample_noise(seed: int, first: int, count: int, tokens: int) -> torch.Tensor:
    """``(count, tokens)`` masking noise; row ``j`` depends only on (seed, sample ``first + j``)."""
    rows = [torch.rand(tokens, generator=torch.Generator().manual_seed((seed * 1_000_003 + first + j) % 2**63))
            for j in range(count)]
    return torch.stack(rows)


def band_names(pipeline: Any, channels: int) -> list[str]:
    """The band names of the chips: the tokenizer's, else the data source's, else ``band0``, ``band1``..."""
    for owner in ("tokenizer", "data"):
        try:
            comp = getattr(pipeline, owner)
        except Exception:  # a pipeline without that slot
            continue
        names = getattr(comp, "bands", None)
        if isinstance(names, list | tuple) and len(names) == channels:
            return [str(n) for n in names]
    return [f"band{i}" for i in range(channels)]


def in_run_dir(pipeline: Any, path: str | Path) -> Path:
    """``path``, or for a relative one the same path inside the pipeline's run folder when it has one. A path that
    leaves the run folder (``..``, a link, or an absolute one unless the run allows ``outputs_anywhere``) is an
    OutputPathError naming it: a resumed run's config may come from a run folder from elsewhere."""
    run_dir = getattr(pipeline, "run_dir", None)
    if run_dir is None:
        return Path(path)
    return path_inside(run_dir, path, "evaluator option 'out'",
                       allow_absolute=bool(getattr(pipeline, "outputs_anywhere", False)))
