"""Continuous batching over a slot KV cache: requests join the running batch at the next step and leave when done.

One engine thread owns the model. Each turn it admits queued requests into free slots, prefills the short prompts
that just arrived together in one forward pass, runs one chunk of one long prompt's prefill (so a long prompt
never holds the running decodes up for more than a chunk), then one decoding step for every slot that is
generating, each row with its own sampling settings and seed. Tokens go back through
each request's ``emit`` callback (called on the engine thread); a request whose ``cancelled`` flag is set leaves
at the next step and frees its slot. Greedy output does not depend on the company a request keeps (a test).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from registry_core.nn import SlotKVCache
from registry_llm.generation import check_sampling, evaluating, sample_next

__all__ = ["Engine", "EngineStats", "GenerationRequest"]


@dataclass
class GenerationRequest:
    """One completion: the prompt's token ids, its budget and sampling, and where its tokens go."""

    prompt: list[int]
    max_tokens: int
    #: Called on the engine thread: ``emit("token", id)``, then once ``emit("done", finish_reason)`` (``stop``,
    #: ``length`` or ``cancelled``) or ``emit("error", message)``.
    emit: Callable[[str, Any], None]
    temperature: float = 1.0
    top_p: float | None = None
    stop_ids: frozenset[int] = frozenset()
    seed: int | None = None
    #: Set from any thread: the request leaves at the next step (a client that went away, a stop string).
    cancelled: threading.Event = field(default_factory=threading.Event)
    # engine state
    slot: int = -1
    prefilled: int = 0
    generated: list[int] = field(default_factory=list)
    generator: torch.Generator | None = None
    last_logits: torch.Tensor | None = None
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class EngineStats:
    """Counters the server's /metrics reads (written on the engine thread)."""

    steps: int = 0
    batch_sizes: collections.Counter[int] = field(default_factory=collections.Counter)
    prompt_tokens: int = 0
    generated_tokens: int = 0


class Engine:
    """``submit(request)`` from any thread; ``start()`` / ``stop()`` the engine thread."""

    def __init__(self, parts: Any, objective: Any, *, max_batch: int = 8, max_queue: int = 64,
                 prefill_chunk: int = 64) -> None:
        self.parts, self.objective = parts, objective
        backbone = parts.backbone
        self.capacity = int(getattr(backbone, "max_positions", None) or 1024)
        self.device = next(backbone.parameters()).device
        # the layout (layers, heads, head size, dtype) of the backbone's own cache, one slot per batch row
        self.cache = SlotKVCache.like(backbone.new_cache(1, 1), max_batch, self.capacity)
        self.max_batch, self.max_queue, self.prefill_chunk = max_batch, max_queue, max(1, prefill_chunk)
        self.queue: collections.deque[GenerationRequest] = collections.deque()
        self.slots: list[GenerationRequest | None] = [None] * max_batch
        self.stats = EngineStats()
        #: Called with the rows of every decoding step (the server's batch-size histogram); on the engine thread.
        self.on_step: Callable[[int], None] | None = None
        self._wake = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None

    # -- any thread ---------------------------------------------------------------------------------------------
    def check(self, request: GenerationRequest) -> None:
        """ValueError naming what the engine cannot run (an empty prompt, a context too long, sampling out of range)."""
        if not request.prompt:
            raise ValueError("the prompt is empty")
        check_sampling(request.temperature, None, request.top_p)
        if len(request.prompt) + request.max_tokens > self.capacity:
            raise ValueError(f"the prompt ({len(request.prompt)} tokens) plus max_tokens ({request.max_tokens}) is "
                             f"more than the model's context of {self.capacity} tokens")

    def submit(self, request: GenerationRequest) -> bool:
        """Queue a checked request; False when the queue is full (the caller answers 429)."""
        self.check(request)
        with self._wake:
            if len(self.queue) >= self.max_queue:
                return False
            self.queue.append(request)
            self._wake.notify()
        return True

    @property
    def queue_depth(self) -> int:
        return len(self.queue)

    @property
    def running(self) -> int:
        return sum(r is not None for r in self.slots)

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="registry-core-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel what is queued or running and end the thread (each request gets its ``done``)."""
        with self._wake:
            for request in [*self.queue, *(r for r in self.slots if r is not None)]:
                request.cancelled.set()
            self._running = False
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def idle(self) -> bool:
        return not self.queue and self.running == 0

    # -- the engine thread --------------------------------------------------------------------------------------
    def _loop(self) -> None:
        with evaluating(self.parts, self.objective):
            while True:
                with self._wake:
                    while self._running and self.idle():
                        self._wake.wait()
                    if not self._running and self.idle():
                        return
                    self._admit()
                try:
                    self._turn()
                except Exception as exc:  # a failed step ends the requests in it, not the server
                    for slot, request in enumerate(self.slots):
                        if request is not None:
                            request.emit("error", f"{type(exc).__name__}: {exc}")
                            self._release(slot)

    def _admit(self) -> None:
        while self.queue and None in self.slots:
            request = self.queue.popleft()
            if request.cancelled.is_set():
                request.emit("done", "cancelled")
                continue
            slot = self.slots.index(None)
            self.slots[slot] = request
            request.slot = slot
            self.cache.free(slot)
            if request.seed is not None:
                request.generator = torch.Generator(device=self.device)
                request.generator.manual_seed(int(request.seed))

    def _release(self, slot: int) -> None:
        self.slots[slot] = None
        self.cache.free(slot)

    def _turn(self) -> None:
        for slot, request in enumerate(self.slots):
            if request is not None and request.cancelled.is_set():
                request.emit("done", "cancelled")
                self._release(slot)
        fresh = [r for r in self.slots if r is not None and r.prefilled == 0 and len(r.prompt) <= self.prefill_chunk]
        if fresh:  # short prompts that just arrived: one forward pass for all of them
            self._prefill_together(fresh)
        prefilling = [r for r in self.slots if r is not None and r.prefilled < len(r.prompt)]
        if prefilling:  # a long prompt: one chunk per turn, so the running decodes wait one chunk at most
            self._prefill(min(prefilling, key=lambda r: r.queued_at))
        decoding = [r for r in self.slots if r is not None and r.last_logits is not None]
        if decoding:
            self._decode(decoding)

    def _prefill(self, request: GenerationRequest) -> None:
        """One chunk of the request's prompt into its slot; at the prompt's end its first token is chosen."""
        start = request.prefilled
        chunk = request.prompt[start:start + self.prefill_chunk]
        ids = torch.tensor([chunk], dtype=torch.long, device=self.device)
        logits = self.objective.logits(self.parts, ids, cache=self.cache.row(request.slot), last_only=True)
        request.prefilled += len(chunk)
        self.stats.prompt_tokens += len(chunk)
        if request.prefilled == len(request.prompt):
            request.last_logits = logits[0, -1]
            self._choose(request)

    def _prefill_together(self, requests: list[GenerationRequest]) -> None:
        """Whole short prompts of several requests in one forward pass (right-padded), each into its own slot."""
        lengths = [len(r.prompt) for r in requests]
        ids = torch.zeros(len(requests), max(lengths), dtype=torch.long)
        for i, r in enumerate(requests):
            ids[i, : lengths[i]] = torch.tensor(r.prompt, dtype=torch.long)
        view = self.cache.rows([r.slot for r in requests], lengths)
        logits = self.objective.logits(self.parts, ids.to(self.device), cache=view)
        last = logits[torch.arange(len(requests)), torch.tensor(lengths) - 1]
        greedy = last.argmax(dim=-1).tolist()
        for i, r in enumerate(requests):
            r.prefilled = lengths[i]
            r.last_logits = last[i]
            self.stats.prompt_tokens += lengths[i]
            self._choose(r, greedy[i])

    def _choose(self, request: GenerationRequest, greedy: int | None = None) -> None:
        """Pick the request's next token from its last logits (``greedy``: their argmax, when already known); emit
        it, or finish the request."""
        assert request.last_logits is not None
        if request.max_tokens == 0:
            self._finish(request, "length")
            return
        if request.temperature <= 0:
            token = greedy if greedy is not None else int(request.last_logits.argmax())
        else:
            token = sample_next(request.last_logits, temperature=request.temperature, top_p=request.top_p,
                                generator=request.generator)
        if token in request.stop_ids:
            self._finish(request, "stop")
            return
        request.generated.append(token)
        self.stats.generated_tokens += 1
        request.emit("token", token)
        if len(request.generated) >= request.max_tokens:
            self._finish(request, "length")

    def _finish(self, request: GenerationRequest, reason: str) -> None:
        request.emit("done", reason)
        self._release(request.slot)

    def _decode(self, decoding: list[GenerationRequest]) -> None:
        """One token for every decoding slot, in one forward pass over slots 0 .. the highest one."""
        step = self.cache.step([r.slot for r in decoding])
        tokens = torch.zeros(step.rows, 1, dtype=torch.long)
        positions = torch.zeros(step.rows, 1, dtype=torch.long)
        for r in decoding:
            tokens[r.slot, 0] = r.generated[-1]
            positions[r.slot, 0] = self.cache.lengths[r.slot]
        logits = self.objective.logits(self.parts, tokens.to(self.device), positions=positions, cache=step,
                                       last_only=True, keep=step.keep())[:, -1]
        self.stats.steps += 1
        self.stats.batch_sizes[len(decoding)] += 1
        if self.on_step is not None:
            self.on_step(len(decoding))
        greedy = logits.argmax(dim=-1).tolist()
        for r in decoding:
            r.last_logits = logits[r.slot]
            self._choose(r, greedy[r.slot])
