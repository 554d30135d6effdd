"""A character-level tokenizer that fits the LLM stack's tokenizer interface (text-shards, next-token)."""

from __future__ import annotations

import collections
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPECIALS = ("<|unk|>", "<|eos|>", "<|pad|>")


class CharTokenizer:
    tokens = "discrete"

    def __init__(self, config: Any) -> None:
        self.config = config
        self.chars: list[str] = []
        if config.path is not None:
            self.chars = json.loads(Path(config.path).read_text(encoding="utf-8"))["chars"]
        self._index = {c: i for i, c in enumerate(self.chars)}

    # -- what text-shards and the objectives read ---------------------------------------------
    @property
    def trained(self) -> bool:
        return bool(self.chars)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) if self.chars else self.config.vocab_size

    @property
    def eos_id(self) -> int:
        return 1

    @property
    def pad_id(self) -> int:
        return 2

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self._json().encode()).hexdigest()

    def train(self, texts: Iterable[str]) -> CharTokenizer:
        counts = collections.Counter(c for t in texts for c in t)
        keep = [c for c, _ in counts.most_common(self.config.vocab_size - len(SPECIALS))]
        self.chars = [*SPECIALS, *sorted(keep)]
        self._index = {c: i for i, c in enumerate(self.chars)}
        return self

    def encode(self, text: str) -> list[int]:
        return [self._index.get(c, 0) for c in text]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        out = (self.chars[i] if 0 <= i < len(self.chars) else "" for i in ids)
        return "".join(c for c in out if not (skip_special and c in SPECIALS))

    def token_bytes(self, index: int) -> bytes:
        char = self.chars[index] if 0 <= index < len(self.chars) else ""
        return b"" if char in SPECIALS else char.encode("utf-8")

    def embedding(self, embed_dim: int) -> Any:
        from torch import nn

        # As many rows as configured (composition wired that size into the objective), even when the
        # corpus had fewer distinct characters.
        table = nn.Embedding(max(self.config.vocab_size, self.vocab_size), embed_dim)
        nn.init.normal_(table.weight, std=0.02)
        table.pad_id = self.pad_id
        return table

    # -- files: the pipeline saves them and hashes them into its lock -------------------------
    def _json(self) -> str:
        return json.dumps({"chars": self.chars}, ensure_ascii=False)

    def save(self, folder: Path) -> Path:
        path = Path(folder) / "chars.json"
        path.write_text(self._json(), encoding="utf-8")
        return path

    def files(self) -> list[Path]:
        return [Path(self.config.path)] if self.config.path else []
