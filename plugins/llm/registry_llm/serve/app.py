"""The OpenAI API's text routes (``/v1/completions``, ``/v1/chat/completions``, ``/v1/embeddings``) and their metrics,
added to the core's served app (``/v1/models``, ``/health``, ``/metrics``, the API key and error JSON of
``registry_core.serve``) for one text model.

Needs the ``serve`` extra (fastapi, uvicorn, prometheus-client); only ``serve`` imports this module.
Generation goes through the continuous-batching :class:`~registry_llm.serve.engine.Engine` (its own thread);
each request waits on an asyncio queue the engine feeds. Streaming is Server-Sent Events in OpenAI's chunk format,
ending with ``data: [DONE]``; a client that goes away cancels its generation. Every error is OpenAI's error
object with its status, never a traceback. With an API key, every route but ``/health`` needs
``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

from fastapi import Request  # at module level: FastAPI resolves the endpoints' annotations from here

from registry_core.serve import APIError, ServeContext, Served, ServeLimits, error_body
from registry_core.serve import create_app as create_served_app
from registry_llm.serve.engine import Engine, GenerationRequest
from registry_llm.serve.openai_api import Sampling, parse_chat, parse_completion, parse_embeddings

__all__ = ["Limits", "ServedModel", "TextStream", "create_app", "served_text"]

#: Seconds between checks that a waiting (non-streaming) client is still there.
DISCONNECT_POLL: Final = 0.25


@dataclass
class ServedModel:
    """What the app serves: a name, the tokenizer, the chat template (None: no chat), the engine and an embedder."""

    name: str
    tokenizer: Any
    template: Any
    engine: Engine
    #: ``texts -> (N, D)`` float rows (mean of the backbone's last hidden states over each text's tokens).
    embed: Callable[[list[list[int]]], Any]
    eos_id: int | None = None
    created: int = 0


@dataclass
class Limits:
    """Caps on what one request may ask, and the API key (None: no authentication)."""

    max_tokens: int = 512
    max_prompt_tokens: int | None = None
    max_body_bytes: int = 1 << 20
    api_key: str | None = None


class TextStream:
    """Token ids in, text out: decodes what was generated so far and releases only text that cannot change
    (no half of a multi-byte character) and cannot be the start of a stop string; ``stopped`` once one appears."""

    def __init__(self, tokenizer: Any, stops: list[str]) -> None:
        self.tokenizer, self.stops = tokenizer, stops
        self.ids: list[int] = []
        self.sent = 0
        self.stopped = False
        self._hold = max((len(s) for s in stops), default=1) - 1

    def _text(self) -> str:
        full = str(self.tokenizer.decode(self.ids, skip_special=True))
        found = [i for i in (full.find(s) for s in self.stops) if i >= 0]
        if found:
            self.stopped = True
            return full[: min(found)]
        return full

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self._text()
        if self.stopped:
            return self._release(text, len(text))
        safe = len(text) - self._hold
        while safe > self.sent and text[safe - 1] == "\ufffd":  # an incomplete character waits for its bytes
            safe -= 1
        return self._release(text, safe)

    def finish(self) -> str:
        text = self._text()
        return self._release(text, len(text))

    def _release(self, text: str, upto: int) -> str:
        if upto <= self.sent:
            return ""
        out = text[self.sent : upto]
        self.sent = upto
        return out


def create_app(model: ServedModel, limits: Limits) -> Any:
    """The FastAPI app serving ``model`` (the engine must be started by the caller)."""
    return create_served_app(served_text(model, limits), ServeLimits(limits.max_body_bytes, limits.api_key))


def served_text(model: ServedModel, limits: Limits) -> Served:
    """``model`` as the core's :class:`~registry_core.serve.Served`: its routes, engine and health fields."""
    engine = model.engine
    return Served(name=model.name, install=lambda app, context: _install(app, context, model, limits),
                  start=engine.start, stop=lambda timeout: engine.stop(timeout=timeout), created=model.created,
                  health=lambda: {"queue": engine.queue_depth, "running": engine.running},
                  about=f"chat: {'yes' if model.template else 'no'}; {engine.max_batch} slots")


def _install(app: Any, context: ServeContext, model: ServedModel, limits: Limits) -> None:
    """Add the text routes and their metrics to ``app``."""
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import Response, StreamingResponse
    from prometheus_client import Counter, Gauge, Histogram

    engine, tokenizer = model.engine, model.tokenizer
    metrics = context.metrics
    prompt_tokens = Counter("registry_core_prompt_tokens", "prompt tokens of finished requests", registry=metrics)
    output_tokens = Counter("registry_core_generated_tokens", "tokens generated", registry=metrics)
    Gauge("registry_core_queue_depth", "requests waiting for a slot", registry=metrics).set_function(
        lambda: engine.queue_depth)
    Gauge("registry_core_running", "requests holding a slot", registry=metrics).set_function(lambda: engine.running)
    batch = Histogram("registry_core_batch_size", "rows per decoding step", registry=metrics,
                      buckets=(1, 2, 4, 8, 16, 32, 64))
    latency = Histogram("registry_core_request_seconds", "time from request to its last token", ["route"],
                        registry=metrics)
    first = Histogram("registry_core_first_token_seconds", "time from request to its first token", ["route"],
                      registry=metrics)
    engine.on_step = batch.observe

    def encode_prompt(text: str, sampling: Sampling) -> list[int]:
        ids = [int(t) for t in tokenizer.encode(text)]
        if not ids:
            raise APIError(400, "the prompt encodes to no tokens", param="prompt", code="invalid_value")
        cap = limits.max_prompt_tokens
        if cap is not None and len(ids) > cap:
            raise APIError(400, f"the prompt is {len(ids)} tokens; at most {cap} are accepted", param="prompt",
                           code="context_length_exceeded")
        if len(ids) + sampling.max_tokens > engine.capacity:
            raise APIError(400, f"the prompt ({len(ids)} tokens) plus max_tokens ({sampling.max_tokens}) is more "
                           f"than the model's context of {engine.capacity} tokens", param="max_tokens",
                           code="context_length_exceeded")
        return ids

    async def run(ids: list[int], sampling: Sampling, request: Request, route: str,
                  chunk: Callable[[str, str | None], dict[str, Any]], finish: Callable[[str, str, dict[str, int]], Any]
                  ) -> Any:
        """Queue one generation; its SSE stream, or its whole answer once done."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        started = time.monotonic()
        stops = {model.eos_id} if model.eos_id is not None and not sampling.ignore_eos else set()

        def emit(kind: str, value: Any) -> None:  # on the engine thread
            loop.call_soon_threadsafe(events.put_nowait, (kind, value))

        job = GenerationRequest(prompt=ids, max_tokens=sampling.max_tokens, temperature=sampling.temperature,
                                top_p=sampling.top_p, stop_ids=frozenset(stops), seed=sampling.seed, emit=emit)
        if not engine.submit(job):
            raise APIError(429, f"the server is busy: {engine.max_queue} requests are waiting; retry shortly",
                           type="rate_limit_error", code="queue_full", headers={"Retry-After": "1"})
        text = TextStream(tokenizer, sampling.stop)

        async def deltas() -> AsyncIterator[tuple[str, str | None]]:
            """(text, None) while generating, then ("", finish_reason) once."""
            seen_first = False
            while True:
                kind, value = await events.get()
                if kind == "token":
                    if not seen_first:
                        first.labels(route).observe(time.monotonic() - started)
                        seen_first = True
                    piece = text.push(int(value))
                    if text.stopped:
                        job.cancelled.set()
                        yield piece, "stop"
                        return
                    if piece:
                        yield piece, None
                elif kind == "done":
                    reason = "length" if value == "length" else "stop"
                    yield text.finish(), reason
                    return
                else:
                    raise APIError(500, f"generation failed: {value}", type="server_error")

        def usage() -> dict[str, int]:
            made = len(text.ids)
            return {"prompt_tokens": len(ids), "completion_tokens": made, "total_tokens": len(ids) + made}

        def done() -> None:
            latency.labels(route).observe(time.monotonic() - started)
            prompt_tokens.inc(len(ids))
            output_tokens.inc(len(text.ids))

        if sampling.stream:
            async def sse() -> AsyncIterator[bytes]:
                try:
                    try:
                        async for piece, reason in deltas():
                            if piece or reason:
                                yield f"data: {json.dumps(chunk(piece, reason))}\n\n".encode()
                    except APIError as exc:  # the status line has gone out: the error travels as an event
                        yield f"data: {json.dumps(error_body(exc))}\n\n".encode()
                        yield b"data: [DONE]\n\n"
                        return
                    if sampling.include_usage:
                        tail = {**chunk("", None), "choices": [], "usage": usage()}
                        yield f"data: {json.dumps(tail)}\n\n".encode()
                    yield b"data: [DONE]\n\n"
                    done()
                finally:
                    job.cancelled.set()  # a client that went away (or a stop string) ends the generation

            return StreamingResponse(sse(), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        parts: list[str] = []
        reason = "stop"
        stream = deltas()
        try:
            while True:
                step = asyncio.ensure_future(anext(stream))
                while not step.done():
                    await asyncio.wait({step}, timeout=DISCONNECT_POLL)
                    if not step.done() and await request.is_disconnected():
                        step.cancel()
                        job.cancelled.set()
                        return Response(status_code=499)
                try:
                    piece, end = step.result()
                except StopAsyncIteration:
                    break
                parts.append(piece)
                if end is not None:
                    reason = end
                    break
        finally:
            job.cancelled.set()
        done()
        return finish("".join(parts), reason, usage())

    def ident(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:24]}"

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = parse_completion(await context.json(request), model.name, limits.max_tokens)
        ids = encode_prompt(body.prompt, body.sampling)
        rid, created = ident("cmpl"), int(time.time())

        def chunk(piece: str, reason: str | None) -> dict[str, Any]:
            return {"id": rid, "object": "text_completion", "created": created, "model": model.name,
                    "choices": [{"index": 0, "text": piece, "finish_reason": reason, "logprobs": None}]}

        def finish(text: str, reason: str, usage: dict[str, int]) -> dict[str, Any]:
            return {**chunk(text, reason), "usage": usage}

        return await run(ids, body.sampling, request, "/v1/completions", chunk, finish)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = parse_chat(await context.json(request), model.name, limits.max_tokens)
        if model.template is None:
            raise APIError(400, f"model '{model.name}' has no chat template (it was not instruction-tuned); use "
                           "/v1/completions", param="messages", code="no_chat_template")
        ids = encode_prompt(model.template.render(body.messages), body.sampling)
        rid, created = ident("chatcmpl"), int(time.time())
        opened = [False]

        def chunk(piece: str, reason: str | None) -> dict[str, Any]:
            delta: dict[str, Any] = {} if reason is not None and not piece else {"content": piece}
            if not opened[0]:
                delta = {"role": "assistant", **delta}
                opened[0] = True
            return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model.name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}]}

        def finish(text: str, reason: str, usage: dict[str, int]) -> dict[str, Any]:
            return {"id": rid, "object": "chat.completion", "created": created, "model": model.name,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": reason, "logprobs": None}], "usage": usage}

        return await run(ids, body.sampling, request, "/v1/chat/completions", chunk, finish)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        raw = await context.json(request)
        fmt = raw.pop("encoding_format", "float")  # the openai client asks for base64 unless told otherwise
        if fmt not in ("float", "base64"):
            raise APIError(400, f"encoding_format: expected 'float' or 'base64', got {fmt!r}",
                           param="encoding_format", code="invalid_value")
        body = parse_embeddings(raw, model.name)
        encoded = [[int(t) for t in tokenizer.encode(s)] for s in body.inputs]
        for i, ids in enumerate(encoded):
            if not ids or len(ids) > engine.capacity:
                raise APIError(400, f"input[{i}] is {len(ids)} tokens; expected 1 to {engine.capacity}",
                               param="input", code="context_length_exceeded")
        vectors = await run_in_threadpool(model.embed, encoded)
        data = []
        for i, row in enumerate(vectors):
            value: Any = (base64.b64encode(row.astype("<f4").tobytes()).decode() if fmt == "base64"
                          else [float(x) for x in row])
            data.append({"object": "embedding", "index": i, "embedding": value})
        count = sum(len(ids) for ids in encoded)
        return {"object": "list", "data": data, "model": model.name,
                "usage": {"prompt_tokens": count, "total_tokens": count}}
