"""``serve``: an OpenAI-compatible HTTP server over a text run, with continuous batching (``engine``)."""

from __future__ import annotations

from registry_llm.serve.engine import Engine, EngineStats, GenerationRequest

__all__ = ["Engine", "EngineStats", "GenerationRequest"]
