"""``wordpiece``: BERT's WordPiece on Hugging Face ``tokenizers``, owning both the encoding and the embedding table.

Trained with ``train(texts)`` or loaded from a BERT ``vocab.txt`` or a WordPiece ``tokenizer.json``. A vocab.txt
gives what ``transformers``' ``BertTokenizer(Fast)`` builds from it: ``BertNormalizer`` (clean text, spaced CJK
characters, lowercase and accents stripped unless ``lowercase`` is false), ``BertPreTokenizer``, WordPiece with
``##`` continuations and words over 100 characters as ``[UNK]``, the template ``[CLS] $A [SEP]`` /
``[CLS] $A [SEP] $B:1 [SEP]:1`` and the WordPiece decoder; so the ids are transformers' ids.

Special tokens: ``encode``, ``encode_batch`` and ``encode_pair`` add ``[CLS]`` ... ``[SEP]`` by default, as BERT
and transformers do (``add_special_tokens=false`` in the config, or per call, gives the plain ids). Sentence
pairs go through ``encode_pair(a, b) -> (ids, token_type_ids)``: segment A, its ``[SEP]`` and the ``[CLS]`` are
type 0, segment B and the last ``[SEP]`` type 1. Text is always encoded as plain text: a literal ``[SEP]`` in a
document is not turned into the control token (transformers' ``split_special_tokens=True``).

With ``text-shards``, documents go in whole through ``encode_batch`` and the source appends ``eos_id`` (here
the ``[SEP]`` id): set the data's ``append_eos = false`` to pack ``[CLS] doc [SEP] [CLS] doc [SEP]`` (as
transformers' MLM examples do), or ``add_special_tokens = false`` to pack ``doc [SEP] doc [SEP]`` (RoBERTa's).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from registry_core import FileFormatError
from registry_core.atomic import write_text
from registry_llm.tokenizers._hf_tokenizer import HFTokenizer
from registry_llm.tokenizers.specs import WordPieceConfig
from registry_llm.tokenizers.text_pieces import PIECE_CHARS, text_pieces

__all__ = ["WordPieceTokenizer", "build_wordpiece", "load_wordpiece"]

#: BERT's continuing-subword prefix and its longest word (longer ones become the unknown token).
PREFIX = "##"
MAX_WORD_CHARS = 100


def bert_tokenizer(vocab: dict[str, int], config: WordPieceConfig) -> Tokenizer:
    """The tokenizer ``transformers.BertTokenizerFast`` builds over ``vocab`` (post-processor and specials aside)."""
    tok = Tokenizer(
        models.WordPiece(
            vocab, unk_token=config.unk_token, continuing_subword_prefix=PREFIX, max_input_chars_per_word=MAX_WORD_CHARS
        )
    )
    # strip_accents=None: follow lowercase, as BERT does (the same JSON transformers writes).
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=config.lowercase
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix=PREFIX)
    return tok


def _read_vocab_txt(path: Path, config: WordPieceConfig) -> Tokenizer:
    """A BERT ``vocab.txt``: line n (from 0) is token n; every problem is an error naming the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileFormatError(f"wordpiece path {path} cannot be read: {exc}") from exc
    expected = "expected a BERT vocab.txt: UTF-8 text, one token per line"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[: exc.start].count(b"\n") + 1
        raise FileFormatError(f"wordpiece path {path}: line {bad} is not UTF-8 ({exc.reason}); {expected}") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline ending the last line starts no token
    if not lines:
        raise FileFormatError(f"wordpiece path {path} is empty; {expected}")
    # The library's own reader (the one transformers uses), so a token's trailing space is trimmed as there.
    vocab: dict[str, int] = models.WordPiece.read_file(str(path))
    if len(vocab) != len(lines):
        first: dict[str, int] = {}
        for n, line in enumerate(lines, 1):
            token = line.rstrip()
            if token in first:
                raise FileFormatError(
                    f"wordpiece path {path}: line {n} repeats the token {token!r} of line {first[token]}; each "
                    "token must appear once (its line number is its id)"
                )
            first[token] = n
        raise FileFormatError(f"wordpiece path {path}: {len(lines)} lines give {len(vocab)} tokens; {expected}")
    if config.unk_token not in vocab:
        raise FileFormatError(
            f"wordpiece path {path} has no {config.unk_token!r} line; the unknown token (unk_token) must be in the "
            "vocabulary"
        )
    # transformers keeps the casing beside the vocab.txt, in tokenizer_config.json: it must agree with ours.
    side = path.parent / "tokenizer_config.json"
    try:
        said = json.loads(side.read_text(encoding="utf-8")).get("do_lower_case")
    except (OSError, ValueError, AttributeError):
        said = None
    _check_lowercase(side, "do_lower_case", said, config)
    return bert_tokenizer(vocab, config)


def _check_lowercase(path: Path, what: str, found: object, config: WordPieceConfig) -> None:
    """A file that says how it normalises (``found``: a bool, else nothing said) must agree with ``lowercase``."""
    if isinstance(found, bool) and found != config.lowercase:
        raise ValueError(
            f"wordpiece path {path} has {what}={str(found).lower()} but the option lowercase="
            f"{str(config.lowercase).lower()}; set lowercase = {str(found).lower()} to use this tokenizer as it is"
        )


def _read_tokenizer_json(path: Path, config: WordPieceConfig) -> Tokenizer:
    """A WordPiece ``tokenizer.json``, kept as saved (normaliser, template); errors name the file."""
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise FileFormatError(f"wordpiece path {path} is not a readable tokenizer.json: {exc}") from exc
    model = tok.model
    if not isinstance(model, models.WordPiece):
        raise FileFormatError(
            f"wordpiece path {path} holds a {type(model).__name__} model, not WordPiece; a BPE tokenizer.json "
            "is loaded by the bpe tokenizer (use = \"bpe\")"
        )
    if tok.get_vocab_size(with_added_tokens=False) == 0:
        raise FileFormatError(f"wordpiece path {path} has an empty vocabulary")
    if model.unk_token not in tok.get_vocab(with_added_tokens=False):
        raise FileFormatError(f"wordpiece path {path}: its unknown token {model.unk_token!r} is not in its vocabulary")
    if model.unk_token != config.unk_token:
        raise ValueError(
            f"wordpiece path {path} has the unknown token {model.unk_token!r} but the option unk_token="
            f"{config.unk_token!r}; set unk_token = {json.dumps(model.unk_token)}"
        )
    norm = tok.normalizer
    if isinstance(norm, normalizers.BertNormalizer):  # the file's own normaliser is kept: it must agree
        _check_lowercase(path, "a BertNormalizer with lowercase", norm.lowercase, config)
    return tok


def load_wordpiece(path: str | os.PathLike[str], config: WordPieceConfig) -> tuple[Tokenizer, Path]:
    """``(tokenizer, the file read)`` of a tokenizer.json, a vocab.txt or a folder holding one; errors name it."""
    path = Path(path).expanduser()
    if path.is_dir():
        found = [path / n for n in ("tokenizer.json", "vocab.txt") if (path / n).is_file()]
        if not found:
            raise FileNotFoundError(f"wordpiece path {path} is a folder without tokenizer.json or vocab.txt")
        path = found[0]
    if not path.is_file():
        raise FileNotFoundError(f"wordpiece path {path} does not exist (expected a tokenizer.json, a vocab.txt or a "
                                "folder with one)")
    if path.suffix == ".json":
        return _read_tokenizer_json(path, config), path
    return _read_vocab_txt(path, config), path


class WordPieceTokenizer(HFTokenizer):
    """WordPiece ids (with BERT's ``[CLS]`` / ``[SEP]``) on the data side, an ``nn.Embedding`` on the model side."""

    name = "wordpiece"
    tokens: Literal["discrete"] = "discrete"
    #: Longest text encoded (or trained on) in one library call; longer ones go in pieces (text_pieces.py).
    piece_chars: int = PIECE_CHARS

    def __init__(self, config: WordPieceConfig) -> None:
        self.config = config
        self._tok: Tokenizer | None = None
        self._file: Path | None = None
        #: What was pulled from the hub (None for a local file or a trained tokenizer), for the lock.
        self.pulled: Any = None
        if config.hub is not None:
            self.pulled = config.pull(("vocab.txt",))
            tok, self._file = load_wordpiece(self.pulled.files[0].path, config)
            self._set(tok)
        elif config.path is not None:
            tok, self._file = load_wordpiece(config.path, config)
            self._set(tok)

    # -- state ---------------------------------------------------------------------------------

    def _set(self, tok: Tokenizer) -> None:
        c = self.config
        # Specials already in the vocabulary keep their ids (BERT's [CLS] 101); others are appended.
        tok.add_special_tokens(c.special_tokens())
        if tok.post_processor is None:  # a tokenizer.json keeps its own template
            cls_id, sep_id = tok.token_to_id(c.cls_token), tok.token_to_id(c.sep_token)
            tok.post_processor = processors.TemplateProcessing(
                single=f"{c.cls_token}:0 $A:0 {c.sep_token}:0",
                pair=f"{c.cls_token}:0 $A:0 {c.sep_token}:0 $B:1 {c.sep_token}:1",
                special_tokens=[(c.cls_token, cls_id), (c.sep_token, sep_id)],
            )
        if c.max_length is None:
            tok.no_truncation()
        else:
            tok.enable_truncation(c.max_length)
        tok.no_padding()
        tok.encode_special_tokens = True  # documents are plain text: never parse control tokens out of them
        self._tok = tok
        padded = c.padded_vocab_size
        if padded is not None and padded < tok.get_vocab_size():
            raise ValueError(
                f"wordpiece padded_vocab_size={padded} is smaller than the tokenizer's vocabulary "
                f"({tok.get_vocab_size()})"
            )

    def token_to_id(self, token: str) -> int | None:
        return self.hf.token_to_id(token)

    @property
    def cls_id(self) -> int:
        return self._special_id(self.config.cls_token)

    @property
    def sep_id(self) -> int:
        return self._special_id(self.config.sep_token)

    @property
    def pad_id(self) -> int:
        return self._special_id(self.config.pad_token)

    @property
    def mask_id(self) -> int:
        return self._special_id(self.config.mask_token)

    @property
    def unk_id(self) -> int:
        return self._special_id(self.config.unk_token)

    @property
    def bos_id(self) -> int:
        """``[CLS]``: what starts a sequence (for code that asks any tokenizer for ``bos_id``)."""
        return self.cls_id

    @property
    def eos_id(self) -> int:
        """``[SEP]``: what ends a sequence, and the document separator ``text-shards`` appends."""
        return self.sep_id

    def _special_id(self, token: str) -> int:
        index = self.hf.token_to_id(token)
        assert index is not None, token  # _set added every special token
        return index

    def files(self) -> list[Path]:
        """The tokenizer file read (its sha256 goes into the pipeline lock); [] for a tokenizer trained here."""
        return [self._file] if self._file is not None else []

    # -- training and files --------------------------------------------------------------------

    def train(self, texts: Iterable[str]) -> WordPieceTokenizer:
        """Learn ``vocab_size`` tokens from ``texts`` (specials first: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4)."""
        c = self.config
        tok = bert_tokenizer({}, c)
        trainer = trainers.WordPieceTrainer(
            vocab_size=c.vocab_size,
            min_frequency=c.min_frequency,
            special_tokens=c.special_tokens(),
            continuing_subword_prefix=PREFIX,
            show_progress=False,
        )
        # In bounded pieces (cut between words): the same word counts, without one huge call.
        pieces = (piece for text in texts for piece in text_pieces(text, self.piece_chars))
        tok.train_from_iterator(pieces, trainer=trainer)
        # The trainer's model keeps only the vocabulary; rebuild it with BERT's settings (unk, ## and the 100).
        self._file = None
        self._set(bert_tokenizer(tok.get_vocab(with_added_tokens=False), c))
        return self

    def vocab_txt(self) -> str:
        """The vocabulary as a BERT ``vocab.txt`` (line n is token n); a ValueError when it cannot be one."""
        by_id = {i: t for t, i in self.hf.get_vocab(with_added_tokens=True).items()}
        if sorted(by_id) != list(range(len(by_id))):
            raise ValueError("the wordpiece vocabulary's ids are not 0..n-1, so it cannot be written as a vocab.txt")
        bad = [t for t in by_id.values() if "\n" in t or "\r" in t or t != t.rstrip()]
        if bad:
            raise ValueError(f"the wordpiece token {bad[0]!r} ends in a space or holds a line break: no vocab.txt line")
        return "".join(by_id[i] + "\n" for i in range(len(by_id)))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write tokenizer.json and, beside it, vocab.txt (when ``vocab_txt`` can), atomically; ``path`` is the
        tokenizer.json, or a folder to write both into. Returns the tokenizer.json."""
        out = Path(path)
        if out.is_dir() or not out.suffix:
            out.mkdir(parents=True, exist_ok=True)
            out = out / "tokenizer.json"
        write_text(out, self.to_json())
        try:
            vocab = self.vocab_txt()
        except ValueError:
            return out  # a tokenizer.json of odd ids: it alone holds the tokenizer
        write_text(out.parent / "vocab.txt", vocab)
        return out

    # -- encoding ------------------------------------------------------------------------------

    def _specials(self, add_special_tokens: bool | None) -> bool:
        return self.config.add_special_tokens if add_special_tokens is None else add_special_tokens

    def encode(self, text: str, *, add_special_tokens: bool | None = None) -> list[int]:
        """Token ids of ``text``: ``[CLS] ... [SEP]`` unless ``add_special_tokens`` (default: the config's) is false;
        truncated to ``max_length`` when set."""
        special = self._specials(add_special_tokens)
        if len(text) > self.piece_chars:
            return self._encode_long(text, special)
        ids: list[int] = self.hf.encode(text, add_special_tokens=special).ids
        return ids

    def encode_pair(self, a: str, b: str, *, add_special_tokens: bool | None = None) -> tuple[list[int], list[int]]:
        """``(ids, token_type_ids)`` of a sentence pair: ``[CLS] a [SEP] b [SEP]`` with types 0 for ``[CLS] a [SEP]``
        and 1 for ``b [SEP]`` (BERT's segments A / B); with ``max_length`` the longer part is cut first."""
        enc = self.hf.encode(a, b, add_special_tokens=self._specials(add_special_tokens))
        return list(enc.ids), list(enc.type_ids)

    def _encode_long(self, text: str, special: bool) -> list[int]:
        """The ids of a text longer than ``piece_chars``, encoded piece by piece (bounded memory)."""
        ids: list[int] = []
        for piece in text_pieces(text, self.piece_chars):
            ids += self.hf.encode(piece, add_special_tokens=False).ids
        n_special = 2 if special else 0
        if self.config.max_length is not None:
            ids = ids[: self.config.max_length - n_special]
        return [self.cls_id, *ids, self.sep_id] if special else ids

    def encode_batch(self, texts: Sequence[str], *, add_special_tokens: bool | None = None) -> list[list[int]]:
        """``[encode(t) for t in texts]`` on the library's batch fast path (all cores).

        A text longer than ``piece_chars`` is encoded in pieces cut between words (same ids).
        """
        special = self._specials(add_special_tokens)
        texts = list(texts)
        long = {i: t for i, t in enumerate(texts) if len(t) > self.piece_chars}
        if long:
            short = self.encode_batch(["" if i in long else t for i, t in enumerate(texts)], add_special_tokens=special)
            return [self._encode_long(long[i], special) if i in long else ids for i, ids in enumerate(short)]
        return [e.ids for e in self.hf.encode_batch_fast(texts, add_special_tokens=special)]

    def decode(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        """Text of ``ids``: word pieces joined (``##`` ones to the word before), as normalised (lowercased for an
        uncased tokenizer) and with the spaces BERT's pre-tokenizer dropped before punctuation left out."""
        return self.hf.decode(list(ids), skip_special_tokens=skip_special)

    # -- model side ----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for worker processes: the tokenizer travels as its JSON text.
        return {"config": self.config, "file": self._file, "json": self.to_json() if self._tok is not None else None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config = state["config"]
        self._file = state["file"]
        self._tok = None
        if state["json"] is not None:
            self._set(Tokenizer.from_str(state["json"]))


def build_wordpiece(config: WordPieceConfig) -> WordPieceTokenizer:
    """Registry factory for ``tokenizer/wordpiece``."""
    return WordPieceTokenizer(config)
