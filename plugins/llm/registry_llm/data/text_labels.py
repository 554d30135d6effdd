"""``text-labels``: labelled texts for sequence classification, read from a .jsonl, .csv or .parquet file.

Each class is split on its own (seeded shuffle, ``val_fraction`` held out), so validation keeps the class mix and
is the same whatever ``labels_per_class`` budget the training side gets: a few-label curve compares like with
like. Samples are ``input_ids`` (``seq_len``, cut or right-padded with the tokenizer's pad id) and ``label``.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import torch

from registry_core import RegistryCoreError
from registry_llm.data.specs import TextLabelsConfig

__all__ = ["ClassesSource", "LabelledTexts", "TextLabels", "TextLabelsError", "TokenizedSource", "build", "hold_out",
           "read_labelled"]

T = TypeVar("T")


class TextLabelsError(RegistryCoreError, ValueError):
    """The labelled file cannot serve as asked; the message names the file and the field, label or class."""


def read_labelled(path: Path, text_field: str, label_field: str, who: str = "text-labels") -> list[tuple[str, str]]:
    """(text, label) rows of a .jsonl, .csv or .parquet file; TextLabelsError naming the fields there are."""
    if not path.is_file():
        raise TextLabelsError(f"{who}: {path} does not exist (expected a .jsonl, .csv or .parquet file)")
    suffix = path.suffix.lower()
    rows: list[dict[str, Any]]
    if suffix == ".jsonl":
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise TextLabelsError(f"{who}: {path} line {n} is not JSON ({exc.msg})") from None
        columns = sorted({k for row in rows for k in row})
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        columns = list(table.column_names)
        rows = table.to_pylist() if text_field in columns and label_field in columns else []
    else:
        raise TextLabelsError(f"{who}: {path} is a {suffix or 'suffix-less'} file; expected .jsonl, .csv or "
                              ".parquet")
    for field in (text_field, label_field):
        if field not in columns:
            raise TextLabelsError(f"{who}: {path} has no field {field!r}; its fields are "
                                  f"{', '.join(columns) or 'none'}")
    out = [(str(r.get(text_field) or ""), str(r.get(label_field))) for r in rows]
    return [(t, lab) for t, lab in out if t.strip()]


class LabelledTexts(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Tokenized samples of one split: ``{"input_ids": (seq_len,), "label": ()}``, or ``label`` ``(seq_len,)`` per
    token (-100: not scored) for token classification."""

    def __init__(self, ids: torch.Tensor, labels: torch.Tensor, texts: list[str]) -> None:
        self.ids = ids
        self.labels = labels
        self.texts = texts

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "label": self.labels[index]}


def hold_out(items: list[T], fraction: float, rng: random.Random, who: str, unit: str,
             error: type[Exception] = TextLabelsError) -> tuple[list[T], list[T]]:
    """(held out, the rest) of ``items`` shuffled by ``rng``: ``ceil(fraction * n)`` held out; ``error`` saying
    ``who`` has too few ``unit`` when none would be left to train on."""
    order = list(items)
    rng.shuffle(order)
    held = math.ceil(len(order) * fraction) if fraction > 0 else 0
    if held >= len(order):
        raise error(f"{who} has {len(order)} {unit}; val_fraction {fraction} leaves none to train on")
    return order[:held], order[held:]


class TokenizedSource:
    """What the labelled-text sources share: the tokenizer the pipeline attaches, and a train split with a val
    split when ``val_fraction`` holds one out."""

    #: The source's registry name, for messages.
    name: ClassVar[str]
    config: Any
    tokenizer: Any = None

    def attach_tokenizer(self, tokenizer: Any) -> Self:
        self.tokenizer = tokenizer
        self._datasets: dict[str, Any] = {}  # tokenized with this tokenizer
        return self

    def has_split(self, split: str) -> bool:
        return split == "train" or (split == "val" and self.config.val_fraction > 0)

    def dataset(self, split: str) -> Any:
        """The tokenized samples of ``split`` (``train`` or ``val``), made once per attached tokenizer: training,
        validation and every evaluator read the same tensors."""
        if split not in ("train", "val"):
            raise ValueError(f"{self.name}: split {split!r} is unknown; expected train or val")
        if self.tokenizer is None:
            raise TextLabelsError(f"{self.name} needs a tokenizer: attach_tokenizer(tok) before dataset()")
        if split not in self._datasets:
            self._datasets[split] = self._make_dataset(split)
        return self._datasets[split]

    def _make_dataset(self, split: str) -> Any:
        raise NotImplementedError


class ClassesSource(TokenizedSource):
    """A source labelled with ``config.classes``: its ``num_classes`` and ``class_names``."""

    @property
    def num_classes(self) -> int:
        return int(self.config.num_classes)

    @property
    def class_names(self) -> list[str]:
        return list(self.config.classes)


class TextLabels(ClassesSource):
    """The ``text-labels`` data source: ``attach_tokenizer``, ``prepare``, ``dataset(split)``."""

    name = "text-labels"

    def __init__(self, config: TextLabelsConfig) -> None:
        self.config = config
        self.path = Path(config.path).expanduser()
        self._splits: dict[str, tuple[list[str], list[int]]] | None = None

    def train_tokenizer_texts(self) -> Iterator[str]:
        """The training texts (a tokenizer trained here, for a model from random init, sees no validation text)."""
        yield from self.splits()["train"][0]

    def splits(self) -> dict[str, tuple[list[str], list[int]]]:
        """``{"train": (texts, label ids), "val": ...}``, stratified and seeded; read once."""
        if self._splits is None:
            self._splits = self._split(read_labelled(self.path, self.config.text_field, self.config.label_field))
        return self._splits

    def _split(self, rows: list[tuple[str, str]]) -> dict[str, tuple[list[str], list[int]]]:
        c = self.config
        index = {name: i for i, name in enumerate(c.classes)}
        unknown = sorted({lab for _, lab in rows if lab not in index})
        if unknown:
            raise TextLabelsError(f"text-labels: {self.path} has labels {', '.join(map(repr, unknown[:10]))} that "
                                  f"option 'classes' does not name (classes: {', '.join(c.classes)})")
        by_class: dict[int, list[str]] = {i: [] for i in range(len(c.classes))}
        for text, lab in rows:
            by_class[index[lab]].append(text)
        empty = [c.classes[i] for i, texts in by_class.items() if not texts]
        if empty:
            raise TextLabelsError(f"text-labels: class {', '.join(map(repr, empty))} has no text in {self.path}; "
                                  "every class in 'classes' needs examples")
        rng = random.Random(c.seed)
        train: list[tuple[str, int]] = []
        val: list[tuple[str, int]] = []
        for label, texts in by_class.items():
            held, kept = hold_out(texts, c.val_fraction, rng, f"text-labels: class {c.classes[label]!r}", "text(s)")
            val += [(t, label) for t in held]
            train += [(t, label) for t in (kept[: c.labels_per_class] if c.labels_per_class else kept)]
        return {"train": ([t for t, _ in train], [lab for _, lab in train]),
                "val": ([t for t, _ in val], [lab for _, lab in val])}

    def prepare(self) -> None:
        """Read and split the file (a missing field, an unknown label or an empty class fails here)."""
        self.splits()

    def _pad_id(self) -> int:
        pad = getattr(self.tokenizer, "pad_id", None)
        if pad is None:
            raise TextLabelsError("text-labels: the tokenizer has no pad token; its samples are padded to seq_len")
        return int(pad)

    def _make_dataset(self, split: str) -> LabelledTexts:
        texts, labels = self.splits()[split]
        c = self.config
        eos = getattr(self.tokenizer, "eos_id", None) if c.append_eos else None
        pad = self._pad_id()
        ids = torch.full((len(texts), c.seq_len), pad, dtype=torch.long)
        encoded = self.tokenizer.encode_batch(texts) if texts else []
        for row, doc in enumerate(encoded):
            doc = list(doc)[: c.seq_len - (1 if eos is not None else 0)]
            if eos is not None:
                doc.append(int(eos))
            ids[row, : len(doc)] = torch.tensor(doc, dtype=torch.long)
        return LabelledTexts(ids, torch.tensor(labels, dtype=torch.long), list(texts))

    def fingerprint(self) -> dict[str, Any]:
        """What a run trains on, for its lock: the file's hash and the split settings."""
        from registry_core.atomic import sha256_file

        c = self.config
        return {"source": f"labelled texts {self.path}", "sha256": sha256_file(self.path),
                "classes": list(c.classes), "val_fraction": c.val_fraction, "labels_per_class": c.labels_per_class,
                "seed": c.seed, "seq_len": c.seq_len}


def build(config: TextLabelsConfig) -> TextLabels:
    return TextLabels(config)
