"""text-shards' language filter (lingua) on real translations (tests/data/translations: Django's messages in eight
languages) and its blocklists (C4 style) on Python's own documentation: per-filter reject counts in the manifest,
the language and its confidence per document, bad settings as one config error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from registry_core import ConfigError, get_registry
from registry_llm.data.content_filters import content_reason, make_filters

ROOT = Path(__file__).resolve().parents[3]
TRANSLATIONS = ROOT / "tests" / "data" / "translations" / "documents.jsonl"


def _rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in TRANSLATIONS.read_text(encoding="utf-8").splitlines()]


def _shards(tmp_path: Path, **options: object) -> tuple[dict[str, object], list[dict[str, object]]]:
    """Build shards of the translations with ``options``; (manifest stats, the per-document records)."""
    from registry_llm.tokenizers.bpe import BPETokenizer  # noqa: F401  (the registry builds it)

    reg = get_registry()
    tok = reg.build("tokenizer", "bpe", vocab_size=300)
    source = reg.build("data_source", "text-shards", paths=[str(TRANSLATIONS)], out=str(tmp_path / "shards"),
                       quality_filter=False, documents=str(tmp_path / "documents.jsonl"), **options)
    tok.train(source.train_tokenizer_texts())
    source.attach_tokenizer(tok).prepare()
    records = [json.loads(x) for x in (tmp_path / "documents.jsonl").read_text(encoding="utf-8").splitlines()]
    return source.stats, records


def test_the_language_filter_keeps_the_languages_asked_for(tmp_path: Path) -> None:
    rows = _rows()
    stats, records = _shards(tmp_path, languages=["de", "fr"])
    truth = [r["language"] for r in rows]
    detected = [r["language"] for r in records]
    right = sum(a == b for a, b in zip(truth, detected, strict=True))
    assert right / len(rows) >= 0.95, list(zip(truth, detected, strict=True))  # measured: 64 of 64
    kept = [r for r in records if r["outcome"] == "kept"]
    assert {r["language"] for r in kept} <= {"de", "fr"} and len(kept) == stats["documents_kept"]
    assert stats["rejected.language"] == len(rows) - len(kept)
    assert stats["languages"] == {lang: sum(r["language"] == lang for r in kept) for lang in ("de", "fr")}
    assert all(0.5 <= float(r["language_score"]) <= 1.0 for r in kept)


def test_a_high_confidence_bar_drops_the_uncertain(tmp_path: Path) -> None:
    loose, _ = _shards(tmp_path / "a", languages=["en", "de", "fr", "es", "it", "nl", "pl", "pt"], min_language_score=0.0)
    strict, records = _shards(tmp_path / "b", languages=["en", "de", "fr", "es", "it", "nl", "pl", "pt"],
                              min_language_score=0.999)
    assert loose["documents_kept"] >= strict["documents_kept"]
    dropped = [r for r in records if r["outcome"] == "language"]
    assert len(dropped) == loose["documents_kept"] - strict["documents_kept"]
    assert all(r["language"] is None or float(r["language_score"]) < 0.999 for r in dropped)
    assert all(float(r["language_score"]) >= 0.999 for r in records if r["outcome"] == "kept")


def test_blocklists_drop_whole_words_phrases_and_domains(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("# C4-style list\nslug\nvalid e-mail\n\n", encoding="utf-8")
    urls = tmp_path / "urls.txt"
    urls.write_text("example.org\n", encoding="utf-8")
    filters = make_filters(None, 0.0, str(words), str(urls))
    assert content_reason("Enter a valid “slug” here.", filters)[0] == "blocklist_word"
    assert content_reason("Sluggish is not slug-free? slugs", filters)[0] == "blocklist_word"  # 'slug' in slug-free
    assert content_reason("Sluggish snails and slugs.", filters)[0] is None  # whole words only
    assert content_reason("Enter a Valid E-mail address.", filters)[0] == "blocklist_word"  # a phrase, any case
    assert content_reason("see https://docs.example.org/x and more", filters)[0] == "blocklist_url"
    assert content_reason("see https://example.org.evil.net/", filters)[0] is None
    rows = _rows()
    stats, records = _shards(tmp_path, blocklist_words=str(words))
    want = sum(bool(re.search(r"\bslug\b", r["text"], re.IGNORECASE)) for r in rows)
    assert want > 0 and stats["rejected.blocklist_word"] == want
    assert sum(r["outcome"] == "blocklist_word" for r in records) == want


def test_a_changed_blocklist_rebuilds_the_shards(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("slug\n", encoding="utf-8")
    first, _ = _shards(tmp_path, blocklist_words=str(words))
    words.write_text("slug\nbitte\n", encoding="utf-8")
    second, _ = _shards(tmp_path, blocklist_words=str(words))
    assert not second.get("up_to_date") and second["documents_kept"] < first["documents_kept"]


@pytest.mark.parametrize(("options", "message"), [
    ({"languages": ["de", "xx"]}, "option 'languages' has 'xx', which lingua does not detect; expected ISO 639-1 codes"),
    ({"languages": []}, "option 'languages' is empty"),
    ({"blocklist_words": "/no/such/list.txt"}, "blocklist_words file /no/such/list.txt cannot be read"),
])
def test_bad_filter_settings_are_config_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        get_registry().build("data_source", "text-shards", paths=[str(TRANSLATIONS)], **options)


def test_an_empty_blocklist_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "urls.txt"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"blocklist_urls file {re.escape(str(empty))} lists nothing"):
        get_registry().build("data_source", "text-shards", paths=[str(TRANSLATIONS)], blocklist_urls=str(empty))


def test_worker_processes_filter_the_same(tmp_path: Path) -> None:
    one = _shards(tmp_path / "one", languages=["en"], blocklist_words=None, workers=1)
    two = _shards(tmp_path / "two", languages=["en"], blocklist_words=None, workers=2, batch_documents=8)
    assert one[1] == two[1] and one[0]["documents_kept"] == two[0]["documents_kept"] == 8
