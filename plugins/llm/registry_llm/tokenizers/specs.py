"""The light manifest of this folder's components: config schemas and specs (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry_core import ComponentSpec, option
from registry_core.choices import HubSource

#: GPT-2's pre-tokenizer split pattern (also the default for ``.tiktoken`` rank files).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@dataclass
class BPEConfig(HubSource):
    """Options of the byte-level BPE tokenizer (Hugging Face ``tokenizers``); its file may come from a hub repo
    (``hub``, ``files = ["tokenizer.json"]``; the card ``gpt2`` sets them)."""

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
        self.check_source("bpe", self.path is not None, required=False)
        source = self.path if self.path is not None else self.cached_file("tokenizer.json")
        if source is not None:
            from registry_llm.tokenizers.vocab_files import vocab_size_of

            specials = (self.bos_token, self.eos_token, self.pad_token, self.mask_token)
            size = vocab_size_of(source, [t for t in specials if t])
            if size is not None:
                self.vocab_size = size


@dataclass
class WordPieceConfig(HubSource):
    """Options of BERT's WordPiece tokenizer (Hugging Face ``tokenizers``); its file may come from a hub repo
    (``hub``, ``files = ["vocab.txt"]``; the card ``bert-base-uncased`` sets them)."""

    vocab_size: int = option(
        30522,
        help="vocabulary size to train to (special tokens included; BERT's is 30522); when `path` is given the file "
        "decides and the resolved config records the true size",
        min=8,
        max=1 << 22,
    )
    path: Path | None = option(
        None,
        help="an existing tokenizer: a WordPiece tokenizer.json, a BERT vocab.txt (one token per line, the line "
        "number is the id), or a folder holding either (tokenizer.json first); None: train with train(texts)",
    )
    lowercase: bool = option(
        True,
        help="true: bert-base-uncased's normalisation (lowercase and strip accents); false: cased. A tokenizer.json "
        "keeps its own normaliser, which must agree, as must do_lower_case in a tokenizer_config.json beside a vocab.txt",
    )
    min_frequency: int = option(2, help="pairs seen fewer times than this are not merged when training", min=1)
    add_special_tokens: bool = option(
        True,
        help="encode, encode_batch and encode_pair add [CLS] ... [SEP] (pairs: [CLS] A [SEP] B [SEP]) as BERT and "
        "transformers do; false: plain ids unless a call asks for them. With text-shards, which appends eos_id ([SEP]) "
        "to each document, set this or its append_eos false so documents do not end in two",
    )
    max_length: int | None = option(
        None,
        help="truncate each encoding to this many tokens, special tokens included (pairs: the longer part first); "
        "None: no truncation",
        min=4,
    )
    pad_multiple: int = option(64, help="the embedding table's rows are the vocabulary rounded up to this", min=1)
    padded_vocab_size: int | None = option(
        None,
        help="rows of the embedding table; None: vocab_size rounded up to pad_multiple (the resolved config "
        "records it); a given value must be >= the true vocabulary size",
        min=1,
    )
    cls_token: str = option("[CLS]", help="classification token that starts every encoding with special tokens")
    sep_token: str = option("[SEP]", help="separator token that ends each segment; also the tokenizer's eos_id")
    pad_token: str = option("[PAD]", help="padding token (id 0 when training)")
    mask_token: str = option("[MASK]", help="mask token of the masked-LM objective")
    unk_token: str = option("[UNK]", help="token of words the vocabulary cannot spell (a vocab file must hold it)")

    def __post_init__(self) -> None:
        specials = self.special_tokens()
        if not all(specials) or len(set(specials)) != len(specials):
            raise ValueError(f"wordpiece special tokens must be non-empty and distinct, got {specials}")
        # A given file decides the vocabulary: read its size now (no `tokenizers`), so composing wires the true
        # size into the objective and `check` shows it. An unreadable file is reported when it is built.
        self.check_source("wordpiece", self.path is not None, required=False)
        source = Path(self.path).expanduser() if self.path is not None else self.cached_file("vocab.txt")
        if source is not None:
            size = self._file_vocab_size(source, specials)
            if size is not None:
                self.vocab_size = size

    def special_tokens(self) -> list[str]:
        """The five special tokens in the order training gives them ids: pad, unk, cls, sep, mask."""
        return [self.pad_token, self.unk_token, self.cls_token, self.sep_token, self.mask_token]

    @staticmethod
    def _file_vocab_size(path: Path, specials: list[str]) -> int | None:
        """Tokens of a tokenizer.json or vocab.txt (or a folder with one) once ``specials`` are added; None when
        missing or unreadable."""
        from registry_llm.tokenizers.vocab_files import vocab_size_of

        if path.is_dir():
            path = path / "tokenizer.json" if (path / "tokenizer.json").is_file() else path / "vocab.txt"
        if path.suffix == ".json":
            return vocab_size_of(path, specials)
        try:
            lines = path.read_bytes().decode("utf-8").split("\n")
        except (OSError, ValueError):
            return None
        if lines[-1] == "":
            lines.pop()  # the newline ending the last line starts no token
        return len({line.rstrip() for line in lines} | set(specials)) if lines else None


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
    ),
    ComponentSpec(
        kind="tokenizer",
        name="wordpiece",
        target="registry_llm.tokenizers.wordpiece:build_wordpiece",
        summary="BERT's WordPiece (HF tokenizers): train, or load vocab.txt or tokenizer.json; [CLS] A [SEP] B [SEP].",
        modality="text",
        tags=("llm", "wordpiece", "bert", "discrete"),
        config=WordPieceConfig,
        provides={"tokens": "discrete", "vocab_size": None, "grid": 1},
    ),
]
