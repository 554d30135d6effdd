"""Fixtures of the LLM model tests: positional encoders built through the registry with their wired options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from registry_core import describe_fields, get_registry
from registry_core._schema import resolve_config_class


@pytest.fixture
def build_positional() -> Callable[..., Any]:
    """Build a ``positional_encoder`` by name, passing only the options its config schema has.

    Composition would wire ``embed_dim``/``heads``/``max_positions`` from the backbone; tests build encoders
    alone, so this fills them in by hand and drops the ones an encoder does not take (alibi has no
    ``embed_dim``, sinusoidal no ``heads``).
    """

    def build(name: str, embed_dim: int, heads: int = 4, **extra: object) -> Any:
        reg = get_registry()
        cls = resolve_config_class(reg.get("positional_encoder", name))
        fields = {f.name for f in describe_fields(cls)} if cls is not None else set()
        opts: dict[str, object] = {"embed_dim": embed_dim, "heads": heads, **extra}
        return reg.build("positional_encoder", name, **{k: v for k, v in opts.items() if k in fields})

    return build


@pytest.fixture
def varied_gpt(build_positional: Callable[..., Any]) -> Callable[..., tuple[Any, Any]]:
    """``varied_gpt(position, context)``: (parts, next-token objective) of a 2-block GPT (32 wide, 4 heads, vocab
    97) whose weights are far from init (std 0.5), so its greedy continuations vary from token to token: what the
    generation tests compare batched and solo decoding on."""
    import torch
    from torch import nn

    from registry_core.interfaces import ModelParts

    def build(position: str, context: int) -> tuple[Any, Any]:
        torch.manual_seed(0)
        reg = get_registry()
        parts = ModelParts(nn.Embedding(97, 32), build_positional(position, 32, 4, max_positions=context),
                           reg.build("backbone", "gpt", embed_dim=32, depth=2, heads=4, max_positions=context,
                                     init_std=0.5, dropout=0.0))
        objective = reg.build("objective", "next-token", tie_weights=False)
        objective.bind(parts)
        return parts, objective

    return build
