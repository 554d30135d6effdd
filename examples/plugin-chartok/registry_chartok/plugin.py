"""The plugin module named by the entry point: specs only, nothing heavy imported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry_core import ComponentSpec, hookimpl, option


@dataclass
class CharTokenizerConfig:
    """Options of the character tokenizer."""

    vocab_size: int = option(256, help="Most characters kept (the most frequent; others map to <|unk|>).", min=8)
    path: Path | None = option(None, help="A vocabulary saved by save() (chars.json); None: train on the data.")


@hookimpl
def registry_core_components() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            kind="tokenizer",
            name="char",
            target="registry_chartok.char_tokenizer:CharTokenizer",
            summary="Character-level tokenizer: one id per character (an example third-party plugin).",
            modality="text",
            tags=("example", "discrete"),
            config=CharTokenizerConfig,
            provides={"tokens": "discrete", "vocab_size": None, "grid": 1},
        )
    ]
