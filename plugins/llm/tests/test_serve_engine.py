"""The serving engine's continuous batching: requests that join a running batch at any step, with prompts prefilled in
chunks, get the tokens they get alone (greedy) and the draws their seed gives alone (sampled); each leaves at its
own stop token, budget or cancellation, and its slot is reused."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from registry_llm.generation import generate
from registry_llm.serve import Engine, GenerationRequest

VOCAB, CONTEXT = 97, 96  # the varied_gpt fixture's vocabulary
POSITIONS = ("alibi", "learned", "rope")
PROMPTS = [[5], [7, 3, 9, 1, 4], list(range(10, 27)), [(i * 7) % VOCAB for i in range(30)], [2, 2, 8],
           list(range(40, 52))]


class Collected:
    """A request's tokens and finish reason, as the engine emits them."""

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.reason: str | None = None
        self.first = threading.Event()
        self.done = threading.Event()

    def __call__(self, kind: str, value: object) -> None:
        if kind == "token":
            self.tokens.append(int(value))  # type: ignore[call-overload]
            self.first.set()
        else:
            self.reason = str(value)
            self.first.set()
            self.done.set()


def request(prompt: list[int], **options: object) -> tuple[GenerationRequest, Collected]:
    got = Collected()
    return GenerationRequest(prompt=prompt, emit=got, **{"max_tokens": 16, "temperature": 0.0, **options}), got  # type: ignore[arg-type]


def wait(*collected: Collected) -> None:
    for c in collected:
        assert c.done.wait(60), "the engine did not finish a request"


@pytest.mark.parametrize("position", POSITIONS)
def test_requests_joining_a_running_batch_get_their_solo_tokens(varied_gpt: Any, position: str) -> None:
    parts, objective = varied_gpt(position, CONTEXT)
    solo = [generate(parts, objective, p, max_new_tokens=16, temperature=0.0) for p in PROMPTS]
    engine = Engine(parts, objective, max_batch=4, prefill_chunk=4)  # 4 slots for 6 requests; prompts in chunks
    engine.start()
    try:
        alone = []
        for p in PROMPTS:  # one at a time
            r, got = request(p)
            engine.submit(r)
            wait(got)
            alone.append(got.tokens)
        assert alone == solo
        batch = [request(p) for p in PROMPTS[:3]]
        for r, _ in batch:
            engine.submit(r)
        batch[0][1].first.wait(60)  # the others join while these decode
        late = [request(p) for p in PROMPTS[3:]]
        for r, _ in late:
            engine.submit(r)
        wait(*(got for _, got in batch + late))
        assert [got.tokens for _, got in batch + late] == solo
        assert all(got.reason == "length" for _, got in batch + late)
        assert max(engine.stats.batch_sizes) > 1 and engine.idle()
    finally:
        engine.stop()


def test_stops_seeds_cancellation_and_a_full_queue(varied_gpt: Any) -> None:
    parts, objective = varied_gpt("rope", CONTEXT)
    greedy = generate(parts, objective, PROMPTS[2], max_new_tokens=16, temperature=0.0)
    stop = greedy[4]
    sampled = generate(parts, objective, PROMPTS[3], max_new_tokens=16, temperature=0.9, top_p=0.9, seed=7)
    engine = Engine(parts, objective, max_batch=2, max_queue=2)
    engine.start()
    try:
        stopped, got_stop = request(PROMPTS[2], stop_ids=frozenset({stop}))
        seeded, got_seed = request(PROMPTS[3], temperature=0.9, top_p=0.9, seed=7)
        engine.submit(stopped)
        engine.submit(seeded)
        wait(got_stop, got_seed)
        assert got_stop.tokens == greedy[:greedy.index(stop)] and got_stop.reason == "stop"
        assert got_seed.tokens == sampled
        long, got_long = request(PROMPTS[0], max_tokens=80)
        engine.submit(long)
        got_long.first.wait(60)
        long.cancelled.set()
        wait(got_long)
        assert got_long.reason == "cancelled" and len(got_long.tokens) < 80
        with pytest.raises(ValueError, match=r"the prompt \(30 tokens\) plus max_tokens \(80\) is more than the "
                                             r"model's context of 96 tokens"):
            engine.submit(request(PROMPTS[3], max_tokens=80)[0])
    finally:
        engine.stop()
    # a stopped engine takes requests but runs none: the queue fills
    idle = Engine(parts, objective, max_batch=1, max_queue=2)
    assert idle.submit(request([1])[0]) and idle.submit(request([2])[0])
    assert not idle.submit(request([3])[0])


def test_stop_cancels_what_is_queued_and_running(varied_gpt: Any) -> None:
    parts, objective = varied_gpt("rope", CONTEXT)
    engine = Engine(parts, objective, max_batch=1, max_queue=4)
    pending = [request(p, max_tokens=60) for p in PROMPTS[:3]]
    for r, _ in pending:
        engine.submit(r)
    engine.start()
    pending[0][1].first.wait(60)
    started = time.monotonic()
    engine.stop()
    assert time.monotonic() - started < 10
    assert all(got.done.is_set() and got.reason == "cancelled" for _, got in pending)
