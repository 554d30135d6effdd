"""Attention probabilities of a trained model, for figures: recomputed from a layer's own q and k in a real forward.

SDPA never returns its weights. :func:`record_attention` hooks one :class:`SelfAttention` and, on each
forward, recomputes ``softmax(q kᵀ / √hd + mask)`` from the layer's input with the very rotary positions,
causal flag and mask the model passed it, so rotary, ALiBi, causal and padding masks all show as the model
saw them. The model's outputs are untouched.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch

from registry_core.nn.attention import Rotary, SelfAttention

__all__ = ["attention_probabilities", "record_attention"]


def attention_probabilities(
    attn: SelfAttention,
    x: torch.Tensor,
    *,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    rotary: Rotary | None = None,
) -> torch.Tensor:
    """``(B, H, T, T)`` float32 attention weights of ``attn`` on ``x`` ``(B, T, D)``, as SDPA computes them.

    ``attn_mask`` is SDPA's: boolean (True = may attend) or additive; ``is_causal`` masks future keys.
    """
    q, k, _ = attn.project(x, rotary)
    scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, H, T, T)
    t_q, t_k = scores.shape[-2:]
    if is_causal:
        allowed = torch.ones(t_q, t_k, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask.float()
    return scores.softmax(dim=-1)


@contextlib.contextmanager
def record_attention(attn: SelfAttention) -> Iterator[list[torch.Tensor]]:
    """Inside the block, each forward of ``attn`` appends its ``(B, H, T, T)`` weights to the yielded list.

    Decoding with a KV cache is refused (its keys span earlier passes); run the whole sequence at once.
    """
    if not isinstance(attn, SelfAttention):
        raise TypeError(f"record_attention needs a registry_core.nn.SelfAttention, got {type(attn).__name__}")
    recorded: list[torch.Tensor] = []

    def hook(module: SelfAttention, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if kwargs.get("cache") is not None:
            raise ValueError("record_attention: the layer ran with a KV cache; run the whole sequence without one")
        x = args[0] if args else kwargs["x"]
        with torch.no_grad():
            recorded.append(attention_probabilities(module, x, attn_mask=kwargs.get("attn_mask"),
                                                    is_causal=bool(kwargs.get("is_causal", False)),
                                                    rotary=kwargs.get("rotary")))

    handle = attn.register_forward_hook(hook, with_kwargs=True)
    try:
        yield recorded
    finally:
        handle.remove()
