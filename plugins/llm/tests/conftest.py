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
