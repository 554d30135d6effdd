"""``generate_batch``: prompts of different lengths decoded together give what each gives alone through
``generate`` (greedy: the same tokens; sampled: the same draws for the same seed), with every positional encoder
(padding must not shift a row's positions nor be attended to); rows stop on their own; bad input is named."""

from __future__ import annotations

from typing import Any

import pytest

from registry_llm.generation import generate, generate_batch

VOCAB, CONTEXT = 97, 64  # the varied_gpt fixture's vocabulary
POSITIONS = ("alibi", "learned", "rope", "sinusoidal")
PROMPTS = [[5], [7, 3, 9, 1, 4], list(range(10, 27)), [(i * 7) % VOCAB for i in range(30)]]


@pytest.mark.parametrize("position", POSITIONS)
def test_greedy_rows_equal_their_solo_runs(varied_gpt: Any, position: str) -> None:
    parts, objective = varied_gpt(position, CONTEXT)
    alone = [generate(parts, objective, p, max_new_tokens=20, temperature=0.0) for p in PROMPTS]
    assert len({tuple(a) for a in alone}) == len(PROMPTS) and sum(len(set(a)) for a in alone) >= 10  # not degenerate
    together = generate_batch(parts, objective, PROMPTS, max_new_tokens=20, temperature=0.0)
    assert together == alone
    # the order of the rows and the company a prompt keeps change nothing
    assert generate_batch(parts, objective, PROMPTS[::-1], max_new_tokens=20, temperature=0.0) == alone[::-1]
    assert generate_batch(parts, objective, [PROMPTS[1]], max_new_tokens=20, temperature=0.0) == [alone[1]]


def test_each_row_stops_at_its_own_stop_token_and_sampling_follows_each_seed(varied_gpt: Any) -> None:
    parts, objective = varied_gpt("rope", CONTEXT)
    greedy = [generate(parts, objective, p, max_new_tokens=20, temperature=0.0) for p in PROMPTS]
    stop = greedy[2][5]  # the 6th token of row 2 (it may come earlier in other rows)
    want = [generate(parts, objective, p, max_new_tokens=20, temperature=0.0, stop_tokens=[stop]) for p in PROMPTS]
    assert len(want[2]) <= 5 and any(len(w) == 20 for w in want)
    assert generate_batch(parts, objective, PROMPTS, max_new_tokens=20, temperature=0.0, stop_tokens=[stop]) == want
    seeds = [11, 12, 13, 14]
    sampled = [generate(parts, objective, p, max_new_tokens=12, temperature=0.9, top_p=0.95, seed=s)
               for p, s in zip(PROMPTS, seeds, strict=True)]
    assert generate_batch(parts, objective, PROMPTS, max_new_tokens=12, temperature=0.9, top_p=0.95,
                          seed=seeds) == sampled
    assert generate_batch(parts, objective, PROMPTS, max_new_tokens=0) == [[], [], [], []]


@pytest.mark.parametrize(("prompts", "options", "message"), [
    ([[1], []], {}, "prompt 1 is empty"),
    ([[1] * 50], {"max_new_tokens": 20}, "the longest prompt (50 tokens) plus max_new_tokens (20) is more than "
                                         "max_positions 64"),
    ([[1], [2]], {"seed": [1, 2, 3], "max_new_tokens": 4}, "3 seeds for 2 prompts"),
    ([[1]], {"temperature": -1.0}, "temperature must be a finite number >= 0"),
])
def test_bad_requests_are_named(varied_gpt: Any, prompts: list[list[int]], options: dict[str, object], message: str) -> None:
    parts, objective = varied_gpt("rope", CONTEXT)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        generate_batch(parts, objective, prompts, **options)  # type: ignore[arg-type]
