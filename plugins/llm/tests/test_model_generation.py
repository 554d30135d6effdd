"""Generation with the preallocated KV cache: identical to the uncached path, sampling options, stops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from registry_core import get_registry
from registry_core.interfaces import ModelParts
from registry_llm.generation import generate, sample_next

V, D = 40, 32


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _model(
    build_positional: Callable[..., Any], position: str, max_positions: int = 64
) -> tuple[ModelParts, nn.Module]:
    torch.manual_seed(3)
    reg = get_registry()
    embed = nn.Embedding(V, D)
    pos = build_positional(position, D, max_positions=max_positions)
    bb = reg.build("backbone", "gpt", embed_dim=D, depth=2, heads=4, max_positions=max_positions, init_std=0.3)
    parts = ModelParts(embed, pos, bb)
    # An untied, large random head keeps a random model from repeating its last token forever.
    obj = reg.build("objective", "next-token", tie_weights=False)
    obj.bind(parts)
    nn.init.normal_(obj.head.proj.weight, std=1.0)
    return parts, obj


@pytest.mark.parametrize("position", ["sinusoidal", "learned", "rope", "alibi"])
def test_cached_and_uncached_greedy_are_identical(position: str, build_positional: Callable[..., Any]) -> None:
    parts, obj = _model(build_positional, position)
    prompt = [5, 9, 2, 17, 30]
    cached = generate(parts, obj, prompt, max_new_tokens=40, temperature=0.0)
    uncached = generate(parts, obj, prompt, max_new_tokens=40, temperature=0.0, use_cache=False)
    assert cached == uncached
    assert len(cached) == 40 and len(set(cached)) >= 3


def test_generation_restores_training_mode_and_respects_stops(build_positional: Callable[..., Any]) -> None:
    parts, obj = _model(build_positional, "rope")
    parts.backbone.train()
    full = generate(parts, obj, [1, 2, 3], max_new_tokens=20, temperature=0.0)
    assert parts.backbone.training
    stop = full[5]
    first = full.index(stop)
    assert generate(parts, obj, [1, 2, 3], max_new_tokens=20, temperature=0.0, stop_tokens=[stop]) == full[:first]
    assert generate(parts, obj, [1, 2, 3], max_new_tokens=0) == []


def test_sampling_is_seeded_and_top_k_one_is_greedy(build_positional: Callable[..., Any]) -> None:
    parts, obj = _model(build_positional, "alibi")
    a = generate(parts, obj, [4], max_new_tokens=15, seed=7)
    b = generate(parts, obj, [4], max_new_tokens=15, seed=7)
    assert a == b
    greedy = generate(parts, obj, [4], max_new_tokens=15, temperature=0.0)
    assert generate(parts, obj, [4], max_new_tokens=15, top_k=1, seed=1) == greedy
    assert generate(parts, obj, [4], max_new_tokens=15, top_p=1e-6, seed=2) == greedy


def test_sample_next_filters() -> None:
    logits = torch.tensor([0.0, 3.0, 2.9, -5.0])
    g = torch.Generator().manual_seed(0)
    assert {sample_next(logits, top_k=2, generator=g) for _ in range(200)} == {1, 2}
    # top_p 0.6: token 1 alone has ~0.51 of the mass, so token 2 is needed as well; nothing else.
    assert {sample_next(logits, top_p=0.6, generator=g) for _ in range(200)} == {1, 2}
    assert sample_next(logits, temperature=0.0) == 1


def test_context_longer_than_max_positions_slides(build_positional: Callable[..., Any]) -> None:
    parts, obj = _model(build_positional, "rope", max_positions=16)
    out = generate(parts, obj, list(range(20)), max_new_tokens=30, temperature=0.0)
    assert len(out) == 30
    ref = generate(parts, obj, list(range(20)), max_new_tokens=30, temperature=0.0, use_cache=False)
    assert len(ref) == 30


def test_bad_arguments(build_positional: Callable[..., Any]) -> None:
    parts, obj = _model(build_positional, "rope")
    with pytest.raises(ValueError, match="prompt is empty"):
        generate(parts, obj, [])
    with pytest.raises(TypeError, match="no logits"):
        generate(parts, object(), [1])
    parts.backbone = get_registry().build("backbone", "bert", embed_dim=D, depth=1, heads=4)
    with pytest.raises(ValueError, match="needs a causal one"):
        generate(parts, obj, [1])
