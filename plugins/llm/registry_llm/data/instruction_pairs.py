"""``instruction-pairs``: (prompt, response) pairs for instruction tuning.

Each pair is rendered by a chat template (the ``chat_template`` convention of tokenizer_config.json: Jinja over
``messages``): the prompt with ``add_generation_prompt`` gives the tokens the model reads, the rest of the whole
conversation the response it learns to write, ended by eos. Only response tokens are targets. With ``pack``,
pairs are laid end to end in windows of ``seq_len``; each keeps its own positions (from 0) and a segment number,
so no token attends to another pair.
"""

from __future__ import annotations

import random
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from registry_core import RegistryCoreError
from registry_llm.data.specs import InstructionPairsConfig
from registry_llm.data.text_labels import TokenizedSource, hold_out, read_labelled

__all__ = ["ChatTemplate", "InstructionPairs", "InstructionPairsError", "build"]

IGNORE = -100
_SENTINEL = "\x00response\x00"


class InstructionPairsError(RegistryCoreError, ValueError):
    """The pairs or the template cannot serve as asked; the message names the file, pair or template."""


class ChatTemplate:
    """A chat template: ``prompt(text)`` (with the generation prompt) and ``split(prompt, response)``."""

    def __init__(self, source: str) -> None:
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        try:
            self._template = ImmutableSandboxedEnvironment(trim_blocks=False).from_string(source)
        except TemplateError as exc:
            raise InstructionPairsError(f"instruction-pairs: the template is not valid Jinja: {exc}") from None
        whole = self._render([{"role": "user", "content": "q"}, {"role": "assistant", "content": _SENTINEL}], False)
        if _SENTINEL not in whole:
            raise InstructionPairsError("instruction-pairs: the template does not render the assistant's message "
                                        "(its content, the response placeholder); expected e.g. "
                                        "{{ m.content }} for every message")

    def _render(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return str(self._template.render(messages=messages, add_generation_prompt=add_generation_prompt))

    def prompt(self, text: str) -> str:
        """What the model reads before it answers ``text``."""
        return self._render([{"role": "user", "content": text}], True)

    def render(self, messages: list[dict[str, str]]) -> str:
        """What the model reads before it answers the conversation ``messages`` (``role``, ``content``)."""
        return self._render(messages, True)

    def split(self, prompt: str, response: str) -> tuple[str, str]:
        """(the prompt part, the response part) of the rendered pair; the prompt part is exactly ``prompt(...)``."""
        head = self.prompt(prompt)
        whole = self._render([{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], False)
        if not whole.startswith(head):
            raise InstructionPairsError("instruction-pairs: the template renders a conversation that does not start "
                                        "with its generation prompt; the response cannot be told apart")
        return head, whole[len(head):]


class PackedWindows(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Windows of ``input_ids``, ``targets`` (response tokens, else -100), ``positions`` and ``segments``."""

    def __init__(self, rows: dict[str, torch.Tensor], pairs: list[tuple[str, str]]) -> None:
        self.rows = rows
        self.pairs = pairs

    def __len__(self) -> int:
        return int(self.rows["input_ids"].shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[index] for k, v in self.rows.items()}


class InstructionPairs(TokenizedSource):
    """The ``instruction-pairs`` data source: ``attach_tokenizer``, ``prepare``, ``dataset(split)``, ``pairs(split)``."""

    name = "instruction-pairs"

    def __init__(self, config: InstructionPairsConfig) -> None:
        self.config = config
        self.path = Path(config.path).expanduser()
        self.template = ChatTemplate(config.template)

    @cached_property
    def _splits(self) -> dict[str, list[tuple[str, str]]]:
        c = self.config
        rows = read_labelled(self.path, c.prompt_field, c.response_field, "instruction-pairs")
        if not rows:
            raise InstructionPairsError(f"instruction-pairs: {self.path} holds no pair")
        held, kept = hold_out(rows, c.val_fraction, random.Random(c.seed), f"instruction-pairs: {self.path}",
                              "pair(s)", InstructionPairsError)
        return {"val": held, "train": kept}

    def pairs(self, split: str) -> list[tuple[str, str]]:
        """The (prompt, response) pairs of a split."""
        if split not in ("train", "val"):
            raise ValueError(f"instruction-pairs: split {split!r} is unknown; expected train or val")
        return list(self._splits[split])

    def train_tokenizer_texts(self) -> Any:
        for prompt, response in self._splits["train"]:
            yield "".join(self.template.split(prompt, response))

    def prepare(self) -> None:
        """Read, split and tokenize both splits (an over-long pair is an error here)."""
        for split in ("train", "val"):
            if self.has_split(split):
                self.dataset(split)

    def encode_pair(self, prompt: str, response: str) -> tuple[list[int], list[int]]:
        """(prompt ids, response ids ending in eos)."""
        head, tail = self.template.split(prompt, response)
        eos = getattr(self.tokenizer, "eos_id", None)
        return list(self.tokenizer.encode(head)), [*self.tokenizer.encode(tail), *([] if eos is None else [int(eos)])]

    def _make_dataset(self, split: str) -> PackedWindows:
        c = self.config
        pairs = self.pairs(split)
        span = c.seq_len + 1  # a window reads seq_len + 1 tokens: inputs and their next-token targets
        pad = getattr(self.tokenizer, "pad_id", None)
        pad = int(pad) if pad is not None else 0
        examples: list[tuple[list[int], list[bool]]] = []
        for n, (prompt, response) in enumerate(pairs):
            p_ids, r_ids = self.encode_pair(prompt, response)
            ids, learn = p_ids + r_ids, [False] * len(p_ids) + [True] * len(r_ids)
            if len(ids) > span:
                if not c.truncate:
                    raise InstructionPairsError(
                        f"instruction-pairs: pair {n} of the {split} split ({prompt[:40]!r}...) is {len(ids)} tokens, "
                        f"{len(ids) - span} more than seq_len + 1 = {span}; raise seq_len or set truncate = true")
                ids, learn = ids[:span], learn[:span]
            examples.append((ids, learn))
        windows: list[list[tuple[list[int], list[bool]]]] = []
        for example in examples:  # first fit, in order: deterministic
            if c.pack and windows and sum(len(e[0]) for e in windows[-1]) + len(example[0]) <= span:
                windows[-1].append(example)
            else:
                windows.append([example])
        n = len(windows)
        rows = {"input_ids": torch.full((n, c.seq_len), pad, dtype=torch.long),
                "targets": torch.full((n, c.seq_len), IGNORE, dtype=torch.long),
                "positions": torch.zeros((n, c.seq_len), dtype=torch.long),
                "segments": torch.full((n, c.seq_len), -1, dtype=torch.long)}
        for w, packed in enumerate(windows):
            start = 0
            for s, (ids, learn) in enumerate(packed):
                length = len(ids)
                stop = min(start + length, c.seq_len)
                width = stop - start
                rows["input_ids"][w, start:stop] = torch.tensor(ids[:width])
                rows["positions"][w, start:stop] = torch.arange(width)
                rows["segments"][w, start:stop] = s
                # token i predicts token i + 1 of the same pair, counted when that one is a response token
                nxt = torch.tensor(ids[1:width + 1] + [IGNORE] * (width + 1 - length))[:width]
                counted = torch.tensor(learn[1:width + 1] + [False] * (width + 1 - length))[:width]
                rows["targets"][w, start:stop] = torch.where(counted, nxt, torch.full_like(nxt, IGNORE))
                start += length
        return PackedWindows(rows, pairs)

    def fingerprint(self) -> dict[str, Any]:
        from registry_core.atomic import sha256_file

        c = self.config
        return {"source": f"instruction pairs {self.path}", "sha256": sha256_file(self.path), "seq_len": c.seq_len,
                "pack": c.pack, "val_fraction": c.val_fraction, "seed": c.seed, "template": c.template}


def build(config: InstructionPairsConfig) -> InstructionPairs:
    return InstructionPairs(config)
