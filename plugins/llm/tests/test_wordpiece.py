"""The `wordpiece` tokenizer: training, transformers parity (vocab.txt and tokenizer.json), pairs, pipelines, bad files.

Text is Python's own documentation (``pydoc_data/topics.py``); accents, CJK ideographs, kana, Hangul and full-width
punctuation come from a glossary of characters written with their Unicode names (``unicodedata``).
"""

from __future__ import annotations

import json
import pickle
import shutil
import unicodedata
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from registry_core import ConfigError, compose, get_registry
from registry_llm.tokenizers.wordpiece import WordPieceTokenizer

transformers = pytest.importorskip("transformers")

TEXTS = [topics[k] for k in sorted(topics)]
#: Paragraphs of a few topics with much punctuation (format specs, operators, string methods).
PUNCTUATED = [topics[k] for k in ("formatstrings", "operator-summary", "string-methods", "calls")]
#: (start, stop) code point ranges: Latin-1 letters with accents, Greek, Cyrillic, CJK ideographs, hiragana, Hangul,
#: CJK and full-width punctuation.
SPANS = [(0xC0, 0x100), (0x391, 0x3AA), (0x430, 0x450), (0x4E00, 0x4E30), (0x3041, 0x3058), (0xAC00, 0xAC08),
         (0x3000, 0x3012), (0xFF01, 0xFF0F)]


def glossary() -> str:
    """One line per character: ``é is latin small letter e with acute.`` (named characters of SPANS)."""
    chars = (chr(c) for a, b in SPANS for c in range(a, b))
    return "\n".join(f"{ch} is {unicodedata.name(ch).lower()}." for ch in chars if unicodedata.name(ch, ""))


GLOSSARY = glossary()
#: The glossary with its accents as combining marks, and text that BERT's clean_text rewrites: a NUL, a zero-width
#: space, a byte order mark, a tab and a carriage return.
DECOMPOSED = unicodedata.normalize("NFD", GLOSSARY)
CONTROL = "café\x00naïve\u200bresume\ufeffx\ty\r\nz " + "中文" + TEXTS[0][:200]


def passages() -> list[str]:
    """Real passages: the first 1500 characters of 12 topics, punctuation-heavy ones, and the glossary texts."""
    return [*(t[:1500] for t in TEXTS[::7]), *(t[:3000] for t in PUNCTUATED), GLOSSARY, DECOMPOSED, CONTROL]


def pairs() -> list[tuple[str, str]]:
    """Sentence pairs: consecutive paragraphs of a topic, and a topic's opening with a part of the glossary."""
    out = []
    for text in TEXTS[3::11]:
        paras = [p for p in text.split("\n\n") if p.strip()]
        out.append((paras[0], paras[1]))
    out.append((TEXTS[5][:400], GLOSSARY[2000:2600]))
    return out


def normalised(text: str) -> str:
    """What an uncased round trip keeps of ``text``: lowercase without accents, whitespace dropped (decoding puts a
    space between words and punctuation marks, and drops it before ``.``, ``,``, ``?`` and ``!``)."""
    text = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
    return "".join(text.split())


@pytest.fixture(scope="module")
def trained() -> WordPieceTokenizer:
    tok = get_registry().build("tokenizer", "wordpiece", vocab_size=2000)
    return tok.train(TEXTS)


@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def vocab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bool]:
    """A vocab.txt trained here (uncased or cased) on the topics and the glossary, alone in its folder."""
    lower: bool = request.param
    tok = get_registry().build("tokenizer", "wordpiece", vocab_size=3000, lowercase=lower)
    tok.train([*TEXTS, GLOSSARY, DECOMPOSED])
    folder = tmp_path_factory.mktemp("uncased" if lower else "cased")
    tok.save(folder)
    (folder / "alone").mkdir()
    shutil.move(folder / "vocab.txt", folder / "alone" / "vocab.txt")
    return folder / "alone" / "vocab.txt", lower


def reference(vocab_txt: Path, lower: bool, **kwargs: Any) -> Any:
    """transformers' BERT tokenizer of ``vocab_txt`` (its folder holds nothing else).

    ``from_pretrained`` on the folder rather than ``BertTokenizerFast(vocab_file=...)``: transformers 5 keeps that
    keyword but builds a five-token default vocabulary from it; the size check below guards against such a fallback.
    """
    ref = transformers.BertTokenizerFast.from_pretrained(str(vocab_txt.parent), do_lower_case=lower, **kwargs)
    assert len(ref) == len(vocab_txt.read_text(encoding="utf-8").splitlines())
    return ref


def ours(path: Path, lower: bool, **opts: object) -> WordPieceTokenizer:
    tok: WordPieceTokenizer = get_registry().build("tokenizer", "wordpiece", path=str(path), lowercase=lower, **opts)
    return tok


# -- training and the round trip -------------------------------------------------------------------


def test_build_through_registry_and_train(trained: WordPieceTokenizer) -> None:
    assert trained.tokens == "discrete" and trained.trained
    assert trained.vocab_size == 2000 and trained.padded_vocab_size == 2048
    assert (trained.pad_id, trained.unk_id, trained.cls_id, trained.sep_id, trained.mask_id) == (0, 1, 2, 3, 4)
    assert (trained.bos_id, trained.eos_id) == (trained.cls_id, trained.sep_id)
    assert trained.resolved_config().padded_vocab_size == 2048 and trained.files() == []
    ids = trained.encode(TEXTS[0])
    assert ids[0] == trained.cls_id and ids[-1] == trained.sep_id
    assert trained.encode(TEXTS[0], add_special_tokens=False) == ids[1:-1]
    assert any(str(trained.id_to_token(i)).startswith("##") for i in ids)


def test_round_trip_of_every_topic(trained: WordPieceTokenizer) -> None:
    for text in TEXTS:
        ids = trained.encode(text)
        assert trained.unk_id not in ids
        assert normalised(trained.decode(ids, skip_special=True)) == normalised(text)
    sentence = TEXTS[0].split("\n")[0]  # "The "assert" statement"
    assert trained.decode(trained.encode(sentence)) == '[CLS] the " assert " statement [SEP]'


def test_encode_batch_equals_encode_and_long_texts_go_in_pieces(trained: WordPieceTokenizer) -> None:
    texts = [*TEXTS[:30], "", GLOSSARY]
    want = [trained.encode(t) for t in texts]
    assert trained.encode_batch(texts) == want
    assert trained.encode_batch(texts, add_special_tokens=False) == [w[1:-1] for w in want]
    pieces = pickle.loads(pickle.dumps(trained))
    pieces.piece_chars = 200  # cut between words: the same ids as one call
    assert pieces.encode(TEXTS[1]) == want[1]
    assert pieces.encode_batch(texts) == want


def test_untrained_tokenizer_says_what_to_do() -> None:
    tok = get_registry().build("tokenizer", "wordpiece")
    assert not tok.trained and tok.vocab_size == 30522 and tok.padded_vocab_size == 30528
    with pytest.raises(RuntimeError, match="train"):
        tok.encode("hello")


def test_save_writes_tokenizer_json_and_vocab_txt(trained: WordPieceTokenizer, tmp_path: Path) -> None:
    path = trained.save(tmp_path / "tok")
    assert path == tmp_path / "tok" / "tokenizer.json"
    lines = (tmp_path / "tok" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == trained.vocab_size and lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for source in (path, tmp_path / "tok", tmp_path / "tok" / "vocab.txt"):
        loaded = get_registry().build("tokenizer", "wordpiece", path=str(source))
        assert loaded.vocab_size == trained.vocab_size
        assert loaded.encode_batch(TEXTS[:5]) == trained.encode_batch(TEXTS[:5])
        assert loaded.files() == [path if source != tmp_path / "tok" / "vocab.txt" else source]
    assert get_registry().build("tokenizer", "wordpiece", path=str(path)).sha256 == trained.sha256


def test_pickles_for_worker_processes(trained: WordPieceTokenizer) -> None:
    clone = pickle.loads(pickle.dumps(trained))
    assert clone.sha256 == trained.sha256
    assert clone.encode(GLOSSARY) == trained.encode(GLOSSARY)


@pytest.mark.usefixtures("torch_one_thread")
def test_padded_vocab_size_and_embedding(trained: WordPieceTokenizer, tmp_path: Path) -> None:
    import torch

    emb = trained.embedding(32)
    assert isinstance(emb, torch.nn.Embedding) and tuple(emb.weight.shape) == (2048, 32)
    assert (emb.pad_id, emb.mask_id) == (0, 4)
    path = trained.save(tmp_path)
    assert get_registry().build("tokenizer", "wordpiece", path=str(path), padded_vocab_size=2100).padded_vocab_size == 2100
    with pytest.raises(ValueError, match="padded_vocab_size"):
        get_registry().build("tokenizer", "wordpiece", path=str(path), padded_vocab_size=1999)


# -- parity with transformers -------------------------------------------------------------------------


def test_vocab_txt_builds_what_transformers_builds(vocab: tuple[Path, bool]) -> None:
    path, lower = vocab
    mine, theirs = json.loads(ours(path, lower).to_json()), json.loads(reference(path, lower).backend_tokenizer.to_str())
    for part in ("normalizer", "pre_tokenizer", "model", "post_processor", "decoder"):
        assert mine[part] == theirs[part], part
    assert mine["normalizer"]["lowercase"] is lower and mine["model"]["max_input_chars_per_word"] == 100


def test_ids_equal_transformers_on_real_passages(vocab: tuple[Path, bool]) -> None:
    path, lower = vocab
    tok, ref = ours(path, lower), reference(path, lower)
    texts = passages()
    assert tok.encode_batch(texts) == [ref(t)["input_ids"] for t in texts]
    assert [tok.encode(t, add_special_tokens=False) for t in texts] == [
        ref(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert tok.unk_id not in tok.encode(GLOSSARY)  # the glossary's characters are in the vocabulary
    ideographs = chr(0x4E2D) + chr(0x4E00)  # two CJK characters of the glossary, written as one word
    cjk = tok.encode(ideographs)
    assert len(cjk) == 4 and tok.unk_id not in cjk  # each ideograph is a word of its own
    for text in texts[:5]:
        ids = ref(text)["input_ids"]
        assert tok.decode(ids) == ref.decode(ids)
        assert tok.decode(ids, skip_special=True) == ref.decode(ids, skip_special_tokens=True)


def test_pairs_and_token_types_equal_transformers(vocab: tuple[Path, bool]) -> None:
    path, lower = vocab
    tok, ref = ours(path, lower), reference(path, lower)
    for a, b in pairs():
        want = ref(a, b)
        ids, types = tok.encode_pair(a, b)
        assert (ids, types) == (want["input_ids"], want["token_type_ids"])
        assert ids.count(tok.sep_id) == 2 and types[0] == 0 and types[-1] == 1
        plain = ref(a, b, add_special_tokens=False)
        assert tok.encode_pair(a, b, add_special_tokens=False) == (plain["input_ids"], plain["token_type_ids"])


def test_truncation_equals_transformers(vocab: tuple[Path, bool]) -> None:
    path, lower = vocab
    tok, ref = ours(path, lower, max_length=40), reference(path, lower)
    cut = 0
    for a, b in pairs():
        want = ref(a, b, truncation=True, max_length=40)
        assert tok.encode_pair(a, b) == (want["input_ids"], want["token_type_ids"])
        cut += len(ref(a, b)["input_ids"]) > 40
    assert cut >= 3  # most pairs are longer than 40 tokens: the parts were cut, the longer first
    for text in passages():
        assert tok.encode(text) == ref(text, truncation=True, max_length=40)["input_ids"]
    long = pickle.loads(pickle.dumps(tok))
    long.piece_chars = 100
    assert long.encode(TEXTS[2]) == tok.encode(TEXTS[2])


def test_special_token_text_stays_text(vocab: tuple[Path, bool]) -> None:
    """A literal "[SEP]" in a document is text (transformers' split_special_tokens=True), not a separator."""
    path, lower = vocab
    tok = ours(path, lower)
    text = "Use [MASK] and [SEP] in a docstring: " + TEXTS[4][:200]
    ids = tok.encode(text)
    assert ids.count(tok.sep_id) == 1 and tok.mask_id not in ids
    assert ids == reference(path, lower, split_special_tokens=True)(text)["input_ids"]
    assert ids != reference(path, lower)(text)["input_ids"]


def test_tokenizer_json_of_transformers_gives_the_same_ids(vocab: tuple[Path, bool], tmp_path: Path) -> None:
    path, lower = vocab
    ref = reference(path, lower)
    ref.save_pretrained(str(tmp_path / "hf"))
    for source in (tmp_path / "hf" / "tokenizer.json", tmp_path / "hf"):
        tok = ours(source, lower)
        assert tok.vocab_size == len(ref) and tok.files() == [tmp_path / "hf" / "tokenizer.json"]
        assert tok.encode_batch(passages()) == [ref(t)["input_ids"] for t in passages()]
        a, b = pairs()[0]
        assert tok.encode_pair(a, b) == (ref(a, b)["input_ids"], ref(a, b)["token_type_ids"])
    with pytest.raises(ValueError, match=rf"lowercase={str(lower).lower()} but the option lowercase="):
        ours(tmp_path / "hf" / "tokenizer.json", not lower)


def test_tokenizer_config_beside_a_vocab_txt_must_agree(vocab: tuple[Path, bool], tmp_path: Path) -> None:
    path, lower = vocab
    shutil.copy(path, tmp_path / "vocab.txt")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": lower}), encoding="utf-8")
    assert ours(tmp_path, lower).encode(TEXTS[0]) == ours(path, lower).encode(TEXTS[0])
    with pytest.raises(ValueError, match=r"tokenizer_config\.json has do_lower_case"):
        ours(tmp_path, not lower)


# -- registry and pipelines -----------------------------------------------------------------------------


def test_check_time_vocab_size_is_the_files(trained: WordPieceTokenizer, tmp_path: Path) -> None:
    path = trained.save(tmp_path)
    for source in (path, tmp_path / "vocab.txt", tmp_path):
        tok = get_registry().build("tokenizer", "wordpiece", path=str(source))
        assert tok.config.vocab_size == tok.vocab_size == 2000
    short = tmp_path / "short" / "vocab.txt"
    short.parent.mkdir()
    short.write_text("[UNK]\nthe\n##s\n", encoding="utf-8")  # four specials are appended
    tok = get_registry().build("tokenizer", "wordpiece", path=str(short))
    assert tok.config.vocab_size == tok.vocab_size == 7 and tok.unk_id == 0 and tok.pad_id == 3


@pytest.mark.usefixtures("torch_one_thread")
def test_composed_bert_masked_lm_pipeline(trained: WordPieceTokenizer, tmp_path: Path) -> None:
    import torch

    trained.save(tmp_path / "tok")
    pipe = compose({
        "data": {"use": "text-shards", "seq_len": 32, "out": str(tmp_path / "unused-shards")},
        "tokenizer": {"use": "wordpiece", "path": str(tmp_path / "tok" / "vocab.txt"), "max_length": 48},
        "positional": {"use": "learned"},
        "backbone": {"use": "bert", "embed_dim": 32, "depth": 1, "heads": 2, "max_positions": 64,
                     "type_vocab_size": 2},
        "objective": {"use": "masked-lm"},
    })
    assert pipe.slots["objective"].config.vocab_size == 2000  # wired from the file before anything is built
    pipe.build(prepare=False)
    tok, model = pipe.tokenizer, pipe.model
    assert isinstance(tok, WordPieceTokenizer)
    assert (model.objective.mask_id, model.objective.pad_id, model.objective.vocab_size) == (4, 0, 2000)
    assert tuple(model.parts.embed.weight.shape) == (2048, 32)
    assert list(pipe.files()) == ["tokenizer:vocab.txt"]
    rows = [tok.encode_pair(a, b) for a, b in pairs()[:2]]
    assert all(len(ids) == 48 for ids, _ in rows)
    batch = {"input_ids": torch.tensor([ids for ids, _ in rows]),
             "token_type_ids": torch.tensor([types for _, types in rows])}
    loss, metrics = model.objective(model.parts, batch)
    assert torch.isfinite(loss) and metrics["tokens"] >= 0


# -- bad inputs ----------------------------------------------------------------------------------------


def test_bad_paths_and_files_name_the_file(tmp_path: Path) -> None:
    reg = get_registry()
    with pytest.raises(FileNotFoundError, match=r"missing\.txt does not exist"):
        reg.build("tokenizer", "wordpiece", path=str(tmp_path / "missing.txt"))
    with pytest.raises(FileNotFoundError, match=r"without tokenizer\.json or vocab\.txt"):
        reg.build("tokenizer", "wordpiece", path=str(tmp_path))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"[PAD]\n[UNK]\n" + TEXTS[0].split()[0].encode() + "\ncafé\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt: line 4 is not UTF-8"):
        reg.build("tokenizer", "wordpiece", path=str(latin1))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.txt is empty"):
        reg.build("tokenizer", "wordpiece", path=str(empty))
    twice = tmp_path / "twice.txt"
    twice.write_text("[UNK]\nthe\n##s\nthe\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"twice\.txt: line 4 repeats the token 'the' of line 2"):
        reg.build("tokenizer", "wordpiece", path=str(twice))
    no_unk = tmp_path / "no_unk.txt"
    no_unk.write_text("[PAD]\nthe\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no_unk\.txt has no '\[UNK\]' line"):
        reg.build("tokenizer", "wordpiece", path=str(no_unk))
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"tokenizer\.json is not a readable tokenizer\.json"):
        reg.build("tokenizer", "wordpiece", path=str(broken))


def test_a_bpe_tokenizer_json_is_refused(tmp_path: Path) -> None:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    bpe.train_from_iterator(TEXTS[:5], trainers.BpeTrainer(vocab_size=300, show_progress=False))
    bpe.save(str(tmp_path / "bpe.json"))
    with pytest.raises(ValueError, match=r"bpe\.json holds a BPE model, not WordPiece"):
        get_registry().build("tokenizer", "wordpiece", path=str(tmp_path / "bpe.json"))
    assert get_registry().build("tokenizer", "bpe", path=str(tmp_path / "bpe.json")).trained


def test_a_file_must_hold_the_unk_token_the_options_name(trained: WordPieceTokenizer, tmp_path: Path) -> None:
    path = trained.save(tmp_path)
    with pytest.raises(ValueError, match=r"vocab\.txt has no '<unk>' line"):
        get_registry().build("tokenizer", "wordpiece", path=str(tmp_path / "vocab.txt"), unk_token="<unk>")
    with pytest.raises(ValueError, match=r"tokenizer\.json has the unknown token '\[UNK\]' but the option unk_token"):
        get_registry().build("tokenizer", "wordpiece", path=str(path), unk_token="<unk>")


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="non-empty and distinct"):
        get_registry().build("tokenizer", "wordpiece", cls_token="[SEP]")
    with pytest.raises(ConfigError, match="max_length"):
        get_registry().build("tokenizer", "wordpiece", max_length=3)
    with pytest.raises(ConfigError, match="vocab_siz"):
        get_registry().build("tokenizer", "wordpiece", vocab_siz=10)
