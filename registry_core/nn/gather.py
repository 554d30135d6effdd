"""Token dropping by gathering: the kept tokens are selected before the blocks, so dropped ones cost nothing."""

from __future__ import annotations

import torch

__all__ = ["check_token_index", "gather_tokens"]


def check_token_index(index: torch.Tensor, batch: int, length: int, *, name: str = "keep_index") -> torch.Tensor:
    """``index`` as long ``(B, T_keep)`` after checking its shape, dtype and range against ``(batch, length)``.

    The range is read from device memory (one sync): an out-of-range gather on a GPU is an unrecoverable
    device assert, not an error a user can read.
    """
    if not isinstance(index, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of token indices (B, T_keep), got {type(index).__name__}")
    if index.dtype == torch.bool or index.is_floating_point() or index.is_complex():
        raise ValueError(
            f"{name} must hold integer token indices (torch.long), got {index.dtype}; a boolean mask of real "
            "tokens goes to keep= instead"
        )
    if index.dim() != 2 or index.shape[0] != batch:
        raise ValueError(f"{name} must have shape (B={batch}, T_keep), got {tuple(index.shape)}")
    index = index.long()
    if index.numel():
        lo, hi = (int(v) for v in torch.stack([index.min(), index.max()]).tolist())
        if lo < 0 or hi >= length:
            raise ValueError(f"{name} must index tokens in [0, {length}), got values in [{lo}, {hi}]")
    return index


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b]]``: ``(B, T, ...)`` -> ``(B, T_keep, ...)``, tokens in ``index`` order.

    ``index`` is ``(B, T_keep)`` integer; its shape and dtype are checked here, its range (which needs a
    device sync) by :func:`check_token_index`, called once per pass by the caller.
    """
    if x.dim() < 2:
        raise ValueError(f"gather_tokens: x must be (B, T, ...), got shape {tuple(x.shape)}")
    if index.dtype not in (torch.long, torch.int32) or index.dim() != 2 or index.shape[0] != x.shape[0]:
        raise ValueError(
            f"gather_tokens: index must be integer (B={x.shape[0]}, T_keep), got {index.dtype} {tuple(index.shape)}"
        )
    idx = index.long().reshape(*index.shape, *([1] * (x.dim() - 2))).expand(*index.shape, *x.shape[2:])
    return torch.gather(x, 1, idx.to(x.device))  # (B, T_keep, ...)
