"""The vocabulary size of a tokenizer file, read with ``json`` and ``base64`` only (no ``tokenizers``).

``check`` wires this size into the objective before anything heavy is imported; it is what the built
``bpe`` tokenizer reports: the file's distinct token strings plus the special tokens not among them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from registry_llm.tokenizers.rank_files import byte_to_unicode, read_rank_file

__all__ = ["file_tokens", "vocab_size_of"]


def _json_tokens(path: Path, key: str | None) -> set[str]:
    """Token strings of a vocab.json (``key`` None) or of a tokenizer.json's model vocab and added tokens."""
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    if key is None:
        return set(data)
    vocab = data[key]["vocab"]
    tokens = set(vocab) if isinstance(vocab, dict) else {piece for piece, *_ in vocab}  # Unigram: [piece, score]
    return tokens | {t["content"] for t in data.get("added_tokens") or []}


def file_tokens(path: str | Path) -> set[str] | None:
    """The token strings of a tokenizer.json, a vocab.json + merges.txt folder or a ``.tiktoken`` file
    (byte-level strings, as ``tokenizers`` holds them); None when the file is missing or unreadable
    (building the tokenizer then says what is wrong with it)."""
    p = Path(path).expanduser()
    try:
        if p.is_dir():
            if (p / "tokenizer.json").is_file():
                return _json_tokens(p / "tokenizer.json", "model")
            if (p / "vocab.json").is_file() and (p / "merges.txt").is_file():
                return _json_tokens(p / "vocab.json", None)
            return None
        if p.suffix == ".tiktoken":
            table = byte_to_unicode()
            return {"".join(table[b] for b in token) for token in read_rank_file(p)}
        return _json_tokens(p, "model") if p.is_file() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def vocab_size_of(path: str | Path, specials: Iterable[str] = ()) -> int | None:
    """Tokens of the tokenizer in ``path`` once ``specials`` are added (those already in it keep their ids)."""
    tokens = file_tokens(path)
    return None if tokens is None else len(tokens | set(specials))
