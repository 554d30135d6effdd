"""Switch a whole built model (every part of a ``ModelParts``) to eval mode for an evaluation, then back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from registry_core.interfaces import ModelParts

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(parts: ModelParts) -> Iterator[None]:
    """Every part in eval mode (dropout off, batch norm frozen) inside the block; each part's mode restored after."""
    modules = [m for m in parts.named().values() if hasattr(m, "train")]  # the whole model, head included
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
