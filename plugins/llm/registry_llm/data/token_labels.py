"""``token-labels``: texts whose character spans carry labels (NER style), for token classification.

Each token of the pipeline's tokenizer takes the label of the span its first non-space character falls in; a
token outside every span (spaces, newlines) and the padding are not scored (-100). The split is seeded over texts.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import torch

from registry_core import RegistryCoreError
from registry_llm.data.specs import TokenLabelsConfig
from registry_llm.data.text_labels import ClassesSource, LabelledTexts, hold_out

__all__ = ["TokenLabels", "TokenLabelsError", "build"]

IGNORE = -100


class TokenLabelsError(RegistryCoreError, ValueError):
    """The spans file cannot serve as asked; the message names the file, line, field or label."""


class TokenLabels(ClassesSource):
    """The ``token-labels`` data source: ``attach_tokenizer``, ``prepare``, ``dataset(split)``."""

    name = "token-labels"

    def __init__(self, config: TokenLabelsConfig) -> None:
        self.config = config
        self.path = Path(config.path).expanduser()
        self._rows: dict[str, list[tuple[str, list[tuple[int, int, int]]]]] | None = None

    def _read(self) -> list[tuple[str, list[tuple[int, int, int]]]]:
        c = self.config
        if not self.path.is_file():
            raise TokenLabelsError(f"token-labels: {self.path} does not exist (expected a .jsonl file)")
        index = {name: i for i, name in enumerate(c.classes)}
        rows = []
        for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TokenLabelsError(f"token-labels: {self.path} line {n} is not JSON ({exc.msg})") from None
            for field in (c.text_field, c.spans_field):
                if field not in row:
                    raise TokenLabelsError(f"token-labels: {self.path} line {n} has no field {field!r}; its fields "
                                           f"are {', '.join(sorted(row))}")
            spans = []
            for start, end, label in row[c.spans_field]:
                if label not in index:
                    raise TokenLabelsError(f"token-labels: {self.path} line {n} has label {label!r}, which option "
                                           f"'classes' does not name (classes: {', '.join(c.classes)})")
                spans.append((int(start), int(end), index[label]))
            rows.append((str(row[c.text_field]), spans))
        return rows

    def splits(self) -> dict[str, list[tuple[str, list[tuple[int, int, int]]]]]:
        if self._rows is None:
            held, kept = hold_out(self._read(), self.config.val_fraction, random.Random(self.config.seed),
                                  f"token-labels: {self.path}", "text(s)", TokenLabelsError)
            self._rows = {"val": held, "train": kept}
        return self._rows

    def train_tokenizer_texts(self) -> Any:
        yield from (text for text, _ in self.splits()["train"])

    def prepare(self) -> None:
        self.splits()

    def _make_dataset(self, split: str) -> LabelledTexts:
        hf = getattr(self.tokenizer, "hf", None)
        if hf is None:
            raise TokenLabelsError("token-labels needs a tokenizer with character offsets (bpe, wordpiece) attached")
        c = self.config
        rows = self.splits()[split]
        pad = getattr(self.tokenizer, "pad_id", None)
        ids = torch.full((len(rows), c.seq_len), int(pad) if pad is not None else 0, dtype=torch.long)
        labels = torch.full((len(rows), c.seq_len), IGNORE, dtype=torch.long)
        for r, (text, spans) in enumerate(rows):
            enc = hf.encode(text, add_special_tokens=False)
            owner = [IGNORE] * (len(text) + 1)
            for start, end, label in spans:
                owner[start:end] = [label] * (end - start)
            for t, (token, (a, b)) in enumerate(zip(enc.ids[: c.seq_len], enc.offsets[: c.seq_len], strict=False)):
                ids[r, t] = token
                first = next((i for i in range(a, b) if not text[i].isspace()), None)
                labels[r, t] = owner[first] if first is not None else IGNORE
        return LabelledTexts(ids, labels, [text for text, _ in rows])


def build(config: TokenLabelsConfig) -> TokenLabels:
    return TokenLabels(config)
