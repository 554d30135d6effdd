"""Attention masks for SDPA: causal, padding (a token keep-mask) and an additive bias, combined once per pass."""

from __future__ import annotations

import torch

__all__ = ["attention_mask"]


def attention_mask(
    q_len: int,
    k_len: int,
    *,
    causal: bool,
    bias: torch.Tensor | None = None,
    keep: torch.Tensor | None = None,
    segments: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> tuple[torch.Tensor | None, bool]:
    """``(attn_mask, is_causal)`` for ``F.scaled_dot_product_attention``.

    The queries are the last ``q_len`` of ``k_len`` positions (the rest come from a KV cache).
    ``bias`` is ``(H, q_len, k_len)`` or, for per-sample positions, ``(B, H, q_len, k_len)`` (ALiBi);
    ``keep`` is ``(B, k_len)``, True for real tokens; ``segments`` ``(B, k_len)`` numbers the packed examples of
    each row, and a token attends only within its own (packing without cross-example attention).
    Returns no mask at all when SDPA's own ``is_causal`` (or nothing) does the job, the fastest path.
    """
    offset = k_len - q_len
    if bias is None and keep is None and segments is None:
        if not causal or q_len == 1:
            return None, False  # a single new query may see every cached key
        if offset == 0:
            return None, True
    allowed: torch.Tensor | None = None
    if causal:
        i = torch.arange(q_len, device=device).unsqueeze(1) + offset
        j = torch.arange(k_len, device=device).unsqueeze(0)
        allowed = j <= i  # (q, k)
    if keep is not None:
        if keep.shape[-1] != k_len:
            raise ValueError(f"keep mask covers {keep.shape[-1]} tokens, attention has {k_len} keys")
        kmask = keep.to(device=device, dtype=torch.bool)[:, None, None, :]  # (B, 1, 1, k)
        allowed = kmask if allowed is None else allowed & kmask
    if segments is not None:
        if segments.dim() != 2 or segments.shape[-1] != k_len:
            raise ValueError(f"segments must be (B, {k_len}), got {tuple(segments.shape)}")
        seg = segments.to(device=device)
        same = (seg[:, -q_len:, None] == seg[:, None, :])[:, None]  # (B, 1, q, k)
        allowed = same if allowed is None else allowed & same
    if allowed is not None and (keep is not None or segments is not None):
        # A query that may see nothing (a padding row) would give NaN; let it see everything instead.
        allowed = allowed | ~allowed.any(dim=-1, keepdim=True)
    if bias is None:
        return allowed, False
    if bias.dim() not in (3, 4) or tuple(bias.shape[-2:]) != (q_len, k_len):
        raise ValueError(
            f"attention bias must be (H, {q_len}, {k_len}) or (B, H, {q_len}, {k_len}), got {tuple(bias.shape)}"
        )
    mask = bias.to(dtype=dtype, device=device)
    if mask.dim() == 3:
        mask = mask.unsqueeze(0)  # (1, H, q, k)
    if allowed is not None:
        mask = mask.masked_fill(~allowed if allowed.dim() == 4 else ~allowed[None, None], float("-inf"))
    return mask, False
