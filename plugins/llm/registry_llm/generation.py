"""Text generation from a causal LM: prefill the prompt into a preallocated KV cache, then decode one token
at a time (greedy or sampled with temperature, top-k and top-p), stopping at a stop token or a budget.

``generate`` takes one prompt; ``generate_batch`` takes several of any lengths and decodes them together: left
padding that no token attends to, and per-row positions, so each row is computed as if it ran alone.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from registry_core.interfaces import ModelParts

__all__ = ["check_sampling", "evaluating", "generate", "generate_batch", "sample_next"]


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


@contextlib.contextmanager
def evaluating(parts: ModelParts, objective: Any) -> Iterator[None]:
    """Every module in eval mode and no autograd within; the modes as they were afterwards."""
    modules = _modules(parts, objective)
    was_training = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        for m, mode in zip(modules, was_training, strict=True):
            m.train(mode)


def _checked(parts: ModelParts, objective: Any) -> Any:
    """The backbone, once the objective can score tokens and the backbone is causal."""
    if not hasattr(objective, "logits"):
        raise TypeError(f"generate: objective {type(objective).__name__} has no logits(parts, ids); use 'next-token'")
    backbone = parts.backbone
    if getattr(backbone, "causal", True) is False:
        raise ValueError("generate: the backbone is bidirectional (e.g. 'bert'); generation needs a causal one ('gpt')")
    return backbone


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
    backbone = _checked(parts, objective)
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
    with evaluating(parts, objective):
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
    return out


def _generators(seed: int | Sequence[int | None] | None, rows: int, device: torch.device) -> list[torch.Generator | None]:
    seeds = list(seed) if isinstance(seed, Sequence) else [seed] * rows
    if len(seeds) != rows:
        raise ValueError(f"generate_batch: {len(seeds)} seeds for {rows} prompts; give one per prompt")
    out: list[torch.Generator | None] = []
    for s in seeds:
        gen = None
        if s is not None:
            gen = torch.Generator(device=device)
            gen.manual_seed(int(s))
        out.append(gen)
    return out


def generate_batch(
    parts: ModelParts,
    objective: Any,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_tokens: Iterable[int] = (),
    seed: int | Sequence[int | None] | None = None,
) -> list[list[int]]:
    """The generated ids of each prompt, decoded together: what ``generate`` gives each prompt alone (greedy: the
    same tokens; sampled: the same draws with the same ``seed``, one per prompt or one for all).

    The prompts are left-padded to the longest; padding is masked out of every attention and each row's
    positions start at its first real token. A row stops at its own stop token or budget; the batch stops
    when every row has. Unlike ``generate`` the context does not slide: the longest prompt plus
    ``max_new_tokens`` must fit ``max_positions``.
    """
    if not prompts:
        return []
    empty = [i for i, p in enumerate(prompts) if not p]
    if empty:
        raise ValueError(f"generate_batch: prompt {empty[0]} is empty; give at least one token id (e.g. the bos token)")
    if max_new_tokens < 0:
        raise ValueError(f"generate_batch: max_new_tokens must be >= 0, got {max_new_tokens}")
    check_sampling(temperature, top_k, top_p)
    backbone = _checked(parts, objective)
    if max_new_tokens == 0:
        return [[] for _ in prompts]
    device = next(backbone.parameters()).device
    lengths = torch.tensor([len(p) for p in prompts])
    rows, longest = len(prompts), int(lengths.max())
    max_positions: int | None = getattr(backbone, "max_positions", None)
    if max_positions is not None and longest + max_new_tokens > max_positions:
        raise ValueError(f"generate_batch: the longest prompt ({longest} tokens) plus max_new_tokens "
                         f"({max_new_tokens}) is more than max_positions {max_positions}; shorten it or generate "
                         "it alone (generate slides the context)")
    generators = _generators(seed, rows, device)
    ids = torch.zeros(rows, longest, dtype=torch.long)
    keep = torch.zeros(rows, longest, dtype=torch.bool)
    for i, prompt in enumerate(prompts):
        ids[i, longest - len(prompt):] = torch.tensor([int(t) for t in prompt], dtype=torch.long)
        keep[i, longest - len(prompt):] = True
    # positions on the host (as the cached path makes them): 0 at each row's first real token, 0 on its padding
    positions = (torch.arange(longest)[None, :] - (longest - lengths)[:, None]).clamp(min=0)
    stops = {int(t) for t in stop_tokens}
    out: list[list[int]] = [[] for _ in range(rows)]
    done = [False] * rows
    with evaluating(parts, objective):
        cache = backbone.new_cache(rows, longest + max_new_tokens)
        keys = keep.to(device)
        logits = objective.logits(parts, ids.to(device), positions=positions, cache=cache, last_only=True,
                                  keep=keys)[:, -1]
        step_keep = torch.ones(rows, 1, dtype=torch.bool, device=device)
        step = 0  # tokens generated per row so far (a finished row is fed its last pick and ignored)
        while not all(done):
            if temperature <= 0:
                picked = logits.argmax(dim=-1).tolist()
            else:
                picked = [0 if done[i] else sample_next(logits[i], temperature=temperature, top_k=top_k, top_p=top_p,
                                                        generator=generators[i]) for i in range(rows)]
            for i, token in enumerate(picked):
                if done[i]:
                    continue
                if token in stops:
                    done[i] = True
                    continue
                out[i].append(int(token))
                done[i] = len(out[i]) >= max_new_tokens
            if all(done):
                break
            step += 1
            positions = (lengths + step - 1)[:, None]  # the fed token's position in each row (finished rows too)
            keys = torch.cat((keys, step_keep), dim=1)
            x = torch.tensor(picked, dtype=torch.long, device=device)[:, None]
            logits = objective.logits(parts, x, positions=positions, cache=cache, last_only=True, keep=keys)[:, -1]
    return out
