"""``serve``: an OpenAI-compatible HTTP server over a text run or a card, with continuous batching (``engine``),
the API's request checks (``openai_api``), the app (``app``) and the command (``command``).

Its public names load on first use: the CLI imports ``serve.command`` for the command's arguments, which must not
import torch or the web stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry_llm.serve.app import Limits, ServedModel, create_app
    from registry_llm.serve.engine import Engine, EngineStats, GenerationRequest

__all__ = ["Engine", "EngineStats", "GenerationRequest", "Limits", "ServedModel", "create_app"]

#: Public name -> the module that defines it.
_NAMES = {"Engine": "engine", "EngineStats": "engine", "GenerationRequest": "engine", "Limits": "app",
          "ServedModel": "app", "create_app": "app"}


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'registry_llm.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(f"registry_llm.serve.{_NAMES[name]}"), name)
