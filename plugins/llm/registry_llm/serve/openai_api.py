"""The OpenAI API's request bodies as the server reads them, and its error objects: every field is checked here,
and a bad one is an :class:`APIError` naming it (``param``), which the app answers as OpenAI's error JSON.

Only what the server does is accepted: ``n``, ``best_of``, ``echo``, ``logprobs``, ``suffix`` and penalties other than
their neutral values are refused by name rather than silently ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from registry_core.serve import APIError, error_body

__all__ = ["APIError", "ChatRequest", "CompletionRequest", "EmbeddingRequest", "Sampling", "error_body", "parse_chat",
           "parse_completion", "parse_embeddings"]

#: At most this many stop strings (OpenAI's limit).
MAX_STOPS: Final = 4
#: Fields with a neutral value the server accepts (and nothing else).
NEUTRAL: Final = {"n": 1, "best_of": 1, "echo": False, "logprobs": None, "suffix": None, "frequency_penalty": 0,
                  "presence_penalty": 0, "logit_bias": None, "top_logprobs": None}


def _bad(param: str, message: str) -> APIError:
    return APIError(400, f"{param}: {message}", param=param, code="invalid_value")


def _number(body: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(name, f"expected a number, got {value!r}")
    if not low <= value <= high:
        raise _bad(name, f"expected a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _integer(body: Mapping[str, Any], name: str, default: int | None, low: int, high: int | None) -> int | None:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, f"expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        limit = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise _bad(name, f"expected an integer {limit}, got {value}")
    return int(value)


def _stops(body: Mapping[str, Any]) -> list[str]:
    value = body.get("stop")
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise _bad("stop", "expected a non-empty string or a list of them")
    if len(stops) > MAX_STOPS:
        raise _bad("stop", f"at most {MAX_STOPS} stop sequences, got {len(stops)}")
    return list(stops)


def _unsupported(body: Mapping[str, Any]) -> None:
    for name, neutral in NEUTRAL.items():
        if name in body and body[name] is not None and body[name] != neutral:
            raise _bad(name, f"this server supports only {neutral!r}, got {body[name]!r}")


@dataclass
class Sampling:
    """What every generating endpoint shares."""

    max_tokens: int
    temperature: float
    top_p: float | None
    stop: list[str]
    seed: int | None
    stream: bool
    include_usage: bool
    #: vLLM's extension: generate ``max_tokens`` tokens even past the end-of-text token (load tests).
    ignore_eos: bool = False


def _sampling(body: Mapping[str, Any], max_tokens_cap: int, default_max_tokens: int) -> Sampling:
    _unsupported(body)
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _integer(body, name, min(default_max_tokens, max_tokens_cap), 1, max_tokens_cap)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0.0:
        raise _bad("top_p", "expected a number in (0, 1], got 0")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("stream", f"expected true or false, got {stream!r}")
    options = body.get("stream_options") or {}
    if not isinstance(options, Mapping):
        raise _bad("stream_options", "expected an object")
    seed = _integer(body, "seed", None, -(2**63), 2**63 - 1)
    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise _bad("ignore_eos", f"expected true or false, got {ignore_eos!r}")
    return Sampling(max_tokens=int(max_tokens or 1), temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
                    top_p=None if top_p >= 1.0 else top_p, stop=_stops(body), seed=seed, stream=stream,
                    include_usage=bool(options.get("include_usage", False)), ignore_eos=ignore_eos)


def _model(body: Mapping[str, Any], served: str) -> None:
    model = body.get("model")
    if model is None:
        return
    if not isinstance(model, str):
        raise _bad("model", f"expected a string, got {model!r}")
    if model != served:
        raise APIError(404, f"The model '{model}' does not exist; this server serves '{served}'", param="model",
                       code="model_not_found")


@dataclass
class CompletionRequest:
    prompt: str
    sampling: Sampling


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]
    sampling: Sampling


@dataclass
class EmbeddingRequest:
    inputs: list[str] = field(default_factory=list)


def parse_completion(body: Mapping[str, Any], served: str, max_tokens_cap: int) -> CompletionRequest:
    """``POST /v1/completions``: one prompt (a string, or a list holding one)."""
    _model(body, served)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise APIError(400, "prompt: expected a string (or a list of one string)", param="prompt",
                       code="invalid_value" if "prompt" in body else "missing_required_parameter")
    return CompletionRequest(prompt, _sampling(body, max_tokens_cap, 16))


def parse_chat(body: Mapping[str, Any], served: str, max_tokens_cap: int) -> ChatRequest:
    """``POST /v1/chat/completions``: messages of ``system`` / ``user`` / ``assistant`` with text content."""
    _model(body, served)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "messages: expected a non-empty list of {role, content}", param="messages",
                       code="invalid_value" if "messages" in body else "missing_required_parameter")
    out = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, Mapping) else None
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):  # content parts: only text ones
            texts = [p.get("text") for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
            content = "".join(t for t in texts if isinstance(t, str)) if len(texts) == len(content) else None
        if role not in ("system", "user", "assistant") or not isinstance(content, str):
            raise _bad(f"messages[{i}]", "expected {role: system | user | assistant, content: text}")
        out.append({"role": str(role), "content": content})
    return ChatRequest(out, _sampling(body, max_tokens_cap, max_tokens_cap))


def parse_embeddings(body: Mapping[str, Any], served: str, max_inputs: int = 64) -> EmbeddingRequest:
    """``POST /v1/embeddings``: a string or a list of strings."""
    _model(body, served)
    value = body.get("input")
    inputs = [value] if isinstance(value, str) else value
    if not isinstance(inputs, list) or not inputs or not all(isinstance(s, str) and s for s in inputs):
        raise APIError(400, "input: expected a non-empty string or a list of them", param="input",
                       code="invalid_value" if "input" in body else "missing_required_parameter")
    if len(inputs) > max_inputs:
        raise _bad("input", f"at most {max_inputs} inputs per request, got {len(inputs)}")
    return EmbeddingRequest(list(inputs))
