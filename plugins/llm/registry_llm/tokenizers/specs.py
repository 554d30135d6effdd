"""The light manifest of this folder's components: config schemas and specs (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry_core import ComponentSpec, option

#: GPT-2's pre-tokenizer split pattern (also the default for ``.tiktoken`` rank files).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@dataclass
class BPEConfig:
    """Options of the byte-level BPE tokenizer (Hugging Face ``tokenizers``)."""

    vocab_size: int = option(
        4096,
        help="vocabulary size to train to (special tokens included); when `path` is given the file decides "
        "and the resolved config records the true size",
        min=260,
        max=1 << 22,
    )
    path: Path | None = option(
        None,
        help="an existing tokenizer: a tokenizer.json, a folder with vocab.json + merges.txt (or tokenizer.json), "
        "or a tiktoken `.tiktoken` rank file; None: train with train(texts)",
    )
    min_frequency: int = option(2, help="pairs seen fewer times than this are not merged when training", min=1)
    threads: int = option(
        0,
        help="threads for encode_batch: 0 uses the tokenizers library's own pool (all cores); N >= 1 encodes "
        "N chunks on N Python threads with the library's pool switched off, so exactly N cores are used",
        min=0,
        max=1024,
    )
    pad_multiple: int = option(64, help="the embedding table's rows are the vocabulary rounded up to this", min=1)
    bos_token: str = option("<|bos|>", help="beginning-of-sequence token ('' for none)")
    eos_token: str = option("<|eos|>", help="end-of-sequence (end-of-document) token ('' for none)")
    pad_token: str = option("<|pad|>", help="padding token ('' for none)")
    mask_token: str = option("<|mask|>", help="mask token for masked-LM objectives ('' for none)")
    pattern: str = option(GPT2_PATTERN, help="pre-tokenizer split regex used with `.tiktoken` rank files")
    padded_vocab_size: int | None = option(
        None,
        help="rows of the embedding table; None: vocab_size rounded up to pad_multiple (the resolved config "
        "records it); a given value must be >= the true vocabulary size",
        min=1,
    )

    def __post_init__(self) -> None:
        # A given file decides the vocabulary: read its size now (json only), so composing wires the true
        # size into the objective and `check` shows it. An unreadable file is reported when it is built.
        if self.path is not None:
            from registry_llm.tokenizers.vocab_files import vocab_size_of

            specials = (self.bos_token, self.eos_token, self.pad_token, self.mask_token)
            size = vocab_size_of(self.path, [t for t in specials if t])
            if size is not None:
                self.vocab_size = size


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="tokenizer",
        name="bpe",
        target="registry_llm.tokenizers.bpe:build_bpe",
        summary="Byte-level BPE (HF tokenizers): train, or load tokenizer.json, vocab+merges or .tiktoken.",
        modality="text",
        tags=("llm", "bpe", "discrete"),
        config=BPEConfig,
        provides={"tokens": "discrete", "vocab_size": None, "grid": 1},
    )
]
