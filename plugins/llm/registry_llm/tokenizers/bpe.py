"""``bpe``: byte-level BPE on Hugging Face ``tokenizers``, owning both the encoding and the embedding table.

Trained with ``train(texts)`` or loaded from a ``tokenizer.json``, a folder with ``vocab.json`` +
``merges.txt``, or a tiktoken ``.tiktoken`` rank file (ids then equal tiktoken's). Text is always encoded
as plain text: a literal ``<|eos|>`` in a document is not turned into the control token.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from registry_core import FileFormatError
from registry_core.atomic import write_text
from registry_llm.tokenizers._hf_tokenizer import HFTokenizer
from registry_llm.tokenizers.rank_files import byte_to_unicode, ranks_to_vocab_merges, read_rank_file
from registry_llm.tokenizers.specs import BPEConfig
from registry_llm.tokenizers.text_pieces import PIECE_CHARS, text_pieces

__all__ = ["BPETokenizer", "build_bpe", "load_hf_tokenizer"]

_SPECIAL_FIELDS = ("bos", "eos", "pad", "mask")


def _byte_level(tok: Tokenizer) -> Tokenizer:
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok


def load_hf_tokenizer(path: Path, pattern: str) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` from any of the three supported files; errors name the path."""
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / "tokenizer.json").is_file():
            path = path / "tokenizer.json"
        elif (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
            return _byte_level(Tokenizer(_vocab_merges(path)))
        else:
            raise FileNotFoundError(
                f"bpe path {path} is a folder without tokenizer.json or vocab.json + merges.txt"
            )
    if not path.is_file():
        raise FileNotFoundError(f"bpe path {path} does not exist (expected tokenizer.json, a folder or .tiktoken)")
    if path.suffix == ".tiktoken":
        try:
            vocab, merges = ranks_to_vocab_merges(read_rank_file(path))
        except FileFormatError:
            raise
        except ValueError as exc:
            raise FileFormatError(f"bpe path {path}: {exc}; expected a tiktoken rank file") from None
        # tiktoken looks whole pieces up before merging; ignore_merges does the same.
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        tok.decoder = decoders.ByteLevel()
        return tok
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:
        raise FileFormatError(f"bpe path {path} is not a readable tokenizer.json: {exc}") from exc


def _vocab_merges(folder: Path) -> models.BPE:
    """The BPE model of a GPT-2 style ``vocab.json`` + ``merges.txt``; a bad file is an error naming both."""
    vocab, merges = folder / "vocab.json", folder / "merges.txt"
    try:
        return models.BPE.from_file(str(vocab), str(merges))
    except Exception as exc:  # tokenizers raises a bare Exception that names neither file
        culprit = merges if any(w in str(exc) for w in ("Merges", "Token", "UTF-8")) else vocab
        raise FileFormatError(
            f"bpe path {folder}: {culprit.name} cannot be read ({exc}); expected vocab.json mapping tokens to ids and "
            "merges.txt holding one 'left right' pair of vocabulary tokens per line"
        ) from exc


class BPETokenizer(HFTokenizer):
    """Byte-level BPE ids on the data side, an ``nn.Embedding`` table on the model side."""

    name = "bpe"
    tokens: Literal["discrete"] = "discrete"
    #: Longest text encoded (or trained on) in one library call; longer ones go in pieces (text_pieces.py).
    piece_chars: int = PIECE_CHARS

    def __init__(self, config: BPEConfig) -> None:
        self.config = config
        self._tok: Tokenizer | None = None
        self._bytes: list[bytes] | None = None  # token_bytes table, built on first use
        self._pool: ThreadPoolExecutor | None = None
        if config.threads >= 1:
            # The library's rayon pool would run next to our N threads; switching it off makes N exact.
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
        #: What was pulled from the hub (None for a local file or a trained tokenizer), for the lock.
        self.pulled: Any = None
        if config.hub is not None:
            self.pulled = config.pull(("tokenizer.json",))
            self._set(load_hf_tokenizer(self.pulled.files[0].path, config.pattern))
        elif config.path is not None:
            self._set(load_hf_tokenizer(config.path, config.pattern))

    # -- state ---------------------------------------------------------------------------------

    def _specials(self) -> dict[str, str]:
        return {k: getattr(self.config, f"{k}_token") for k in _SPECIAL_FIELDS if getattr(self.config, f"{k}_token")}

    def _set(self, tok: Tokenizer) -> None:
        # Specials already in the vocabulary keep their ids (GPT-2's <|endoftext|>); others are appended.
        tok.add_special_tokens(list(dict.fromkeys(self._specials().values())))
        tok.encode_special_tokens = True  # documents are plain text: never parse control tokens out of them
        self._tok = tok
        self._bytes = None
        padded = self.config.padded_vocab_size
        if padded is not None and padded < tok.get_vocab_size():
            raise ValueError(
                f"bpe padded_vocab_size={padded} is smaller than the tokenizer's vocabulary ({tok.get_vocab_size()})"
            )

    def _special_id(self, kind: str) -> int | None:
        token = getattr(self.config, f"{kind}_token")
        return self.hf.token_to_id(token) if token else None

    @property
    def bos_id(self) -> int | None:
        return self._special_id("bos")

    @property
    def eos_id(self) -> int | None:
        return self._special_id("eos")

    @property
    def pad_id(self) -> int | None:
        return self._special_id("pad")

    @property
    def mask_id(self) -> int | None:
        return self._special_id("mask")

    # -- training and files --------------------------------------------------------------------

    def files(self) -> list[Path]:
        """The tokenizer file read (pulled or local), whose hash goes into the lock; none for a trained one."""
        if self.pulled is not None:
            return [f.path for f in self.pulled.files]
        return [Path(self.config.path)] if self.config.path is not None else []

    def train(self, texts: Iterable[str]) -> BPETokenizer:
        """Learn ``vocab_size`` tokens from ``texts`` (specials first: ids 0..3 by default)."""
        tok = _byte_level(Tokenizer(models.BPE()))
        trainer = trainers.BpeTrainer(
            vocab_size=self.config.vocab_size,
            min_frequency=self.config.min_frequency,
            special_tokens=list(dict.fromkeys(self._specials().values())),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        # In bounded pieces (cut where a pre-token starts): the same word counts, without one huge call.
        pieces = (piece for text in texts for piece in text_pieces(text, self.piece_chars))
        tok.train_from_iterator(pieces, trainer=trainer)
        self._set(tok)
        return self

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write tokenizer.json atomically (``path`` is the file, or a folder to write it into)."""
        out = Path(path)
        if out.is_dir() or not out.suffix:
            out.mkdir(parents=True, exist_ok=True)
            out = out / "tokenizer.json"
        write_text(out, self.to_json())
        return out

    # -- encoding ------------------------------------------------------------------------------

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Token ids of ``text``; ``bos`` / ``eos`` add those special tokens (none by default)."""
        if len(text) > self.piece_chars:
            return self._wrap(self._encode_long(text), bos, eos)
        ids: list[int] = self.hf.encode(text, add_special_tokens=False).ids
        return self._wrap(ids, bos, eos)

    def _wrap(self, ids: list[int], bos: bool, eos: bool) -> list[int]:
        if bos:
            bos_id = self.bos_id
            if bos_id is None:
                raise ValueError("bos=True but the bpe tokenizer has no bos_token")
            ids = [bos_id, *ids]
        if eos:
            eos_id = self.eos_id
            if eos_id is None:
                raise ValueError("eos=True but the bpe tokenizer has no eos_token")
            ids = [*ids, eos_id]
        return ids

    def _encode_chunk(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch_fast(texts, add_special_tokens=False)]

    def _encode_long(self, text: str) -> list[int]:
        """The ids of a text longer than ``piece_chars``, encoded piece by piece (bounded memory)."""
        ids: list[int] = []
        for piece in text_pieces(text, self.piece_chars):
            ids += self.hf.encode(piece, add_special_tokens=False).ids
        return ids

    def encode_batch(self, texts: Sequence[str], *, bos: bool = False, eos: bool = False) -> list[list[int]]:
        """``[encode(t) for t in texts]`` on the library's batch fast path (``threads`` sets the cores).

        A text longer than ``piece_chars`` is encoded in pieces cut where a pre-token starts (same ids).
        """
        texts = list(texts)
        long = {i: t for i, t in enumerate(texts) if len(t) > self.piece_chars}
        if long:
            short = self.encode_batch(["" if i in long else t for i, t in enumerate(texts)])
            out = [self._encode_long(long[i]) if i in long else ids for i, ids in enumerate(short)]
            return [self._wrap(ids, bos, eos) for ids in out] if bos or eos else out
        threads = self.config.threads
        if threads <= 1 or len(texts) < 2 * threads:
            out = self._encode_chunk(texts)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(threads, thread_name_prefix="bpe")
            step = -(-len(texts) // threads)
            chunks = [texts[i : i + step] for i in range(0, len(texts), step)]
            out = [ids for part in self._pool.map(self._encode_chunk, chunks) for ids in part]
        if bos or eos:
            out = [self._wrap(ids, bos, eos) for ids in out]
        return out

    def decode(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        """Text of ``ids`` (byte-level, so any id sequence decodes; broken UTF-8 shows as U+FFFD)."""
        return self.hf.decode(list(ids), skip_special_tokens=skip_special)

    def token_bytes(self, index: int) -> bytes:
        """The UTF-8 bytes token ``index`` stands for (b"" for special tokens); bits-per-byte counts these."""
        if self._bytes is None:
            to_byte = {c: b for b, c in byte_to_unicode().items()}
            special = {t.content for t in self.hf.get_added_tokens_decoder().values()}
            table: list[bytes] = [b""] * self.hf.get_vocab_size()
            for piece, i in self.hf.get_vocab().items():
                if piece in special or i >= len(table):
                    continue
                table[i] = bytes(to_byte[c] for c in piece) if all(c in to_byte for c in piece) else piece.encode()
            self._bytes = table
        return self._bytes[index] if 0 <= index < len(self._bytes) else b""

    # -- model side ----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for worker processes: the tokenizer travels as its JSON text.
        return {"config": self.config, "json": self.to_json() if self._tok is not None else None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config = state["config"]
        self._pool = None
        self._tok = None
        self._bytes = None
        if state["json"] is not None:
            self._set(Tokenizer.from_str(state["json"]))


def build_bpe(config: BPEConfig) -> BPETokenizer:
    """Registry factory for ``tokenizer/bpe``."""
    return BPETokenizer(config)
