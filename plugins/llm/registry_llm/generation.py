"""Text generation from a causal LM: prefill the prompt into a preallocated KV cache, then decode one token
at a time (greedy or sampled with temperature, top-k and top-p), stopping at a stop token or a budget."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from registry_core.interfaces import ModelParts

__all__ = ["check_sampling", "generate", "sample_next"]


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ValueError for a sampling option out of range (rather than quietly switching it off)."""
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0: greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 (leave it unset for no top-k), got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1: no top-p), got {top_p}")


def sample_next(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> int:
    """One token id from ``(V,)`` logits; ``temperature == 0`` is greedy (argmax)."""
    check_sampling(temperature, top_k, top_p)
    if temperature <= 0:
        return int(logits.argmax())
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the tokens ranked above it already reach top_p; the first one always stays.
        drop = (torch.cumsum(probs, dim=-1) - probs) >= top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if generator is not None and generator.device != probs.device:
        probs = probs.to(generator.device)
    return int(torch.multinomial(probs, 1, generator=generator))


def _modules(parts: ModelParts, objective: Any) -> list[nn.Module]:
    found = [m for m in (*parts.named().values(), objective) if isinstance(m, nn.Module)]
    return list({id(m): m for m in found}.values())  # the objective may be one of the parts


def generate(
    parts: ModelParts,
    objective: Any,
    prompt_ids: Sequence[int],
    *,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_tokens: Iterable[int] = (),
    use_cache: bool = True,
    seed: int | None = None,
) -> list[int]:
    """The generated token ids (the prompt and a final stop token not included).

    ``objective`` must offer ``logits(parts, ids, cache=..., last_only=True)`` (``next-token`` does) and
    ``parts.backbone`` ``new_cache(batch, capacity)`` and ``max_positions``. Without the cache every step
    runs the whole context again (the reference the cached path must match). Past ``max_positions``
    the context slides: uncached it keeps the last ``max_positions`` tokens; cached it refills the cache
    with the last half of them, so outputs then differ from the uncached path.
    """
    if not prompt_ids:
        raise ValueError("generate: the prompt is empty; give at least one token id (e.g. the bos token)")
    if max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    check_sampling(temperature, top_k, top_p)
    if not hasattr(objective, "logits"):
        raise TypeError(f"generate: objective {type(objective).__name__} has no logits(parts, ids); use 'next-token'")
    backbone = parts.backbone
    if getattr(backbone, "causal", True) is False:
        raise ValueError("generate: the backbone is bidirectional (e.g. 'bert'); generation needs a causal one ('gpt')")
    ref = next(backbone.parameters())
    device = ref.device
    max_positions: int | None = getattr(backbone, "max_positions", None)
    stops = set(stop_tokens)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)

    tokens = [int(t) for t in prompt_ids]
    window = max_positions or len(tokens) + max_new_tokens
    out: list[int] = []
    modules = _modules(parts, objective)
    was_training = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.inference_mode():
            cache = None
            context = tokens[-window:]

            def run(ids: list[int]) -> torch.Tensor:
                x = torch.tensor([ids], dtype=torch.long, device=device)
                logits: torch.Tensor = objective.logits(parts, x, cache=cache, last_only=True)
                return logits[0, -1]

            if use_cache:
                cache = backbone.new_cache(1, min(window, len(context) + max_new_tokens))
            logits = run(context)
            while len(out) < max_new_tokens:
                nxt = sample_next(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
                if nxt in stops:
                    break
                out.append(nxt)
                tokens.append(nxt)
                if len(out) == max_new_tokens:
                    break
                if cache is None:
                    logits = run(tokens[-window:])
                elif cache.length < cache.capacity:
                    logits = run([nxt])
                else:  # the cache is full: slide by refilling it with the recent half of the context
                    cache.reset()
                    logits = run(tokens[-max(window // 2, 1) :])
    finally:
        for m, mode in zip(modules, was_training):
            m.train(mode)
    return out
