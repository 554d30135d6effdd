"""Filters on what a document says: its language (lingua, whose models ship inside its package) and blocklists of
words and URL domains (C4 style: a document with a listed word, or a link to a listed domain, is dropped).

A filter's reason (``language``, ``blocklist_word``, ``blocklist_url``) is counted in the shard manifest next to the
Gopher rules'; the detected language and its confidence are kept for every document that was tested.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["ContentFilters", "content_reason", "known_languages", "load_blocklist"]

_WORD = re.compile(r"\w+(?:['’]\w+)*")
_URL_HOST = re.compile(r"(?:https?://|\bwww\.)([^\s/:?#\"'<>]+)", re.IGNORECASE)


@dataclass(frozen=True)
class ContentFilters:
    """Languages to keep (ISO 639-1, None: any) with the least confidence, and the blocked words and domains."""

    languages: tuple[str, ...] | None = None
    min_language_score: float = 0.0
    words: frozenset[str] = field(default_factory=frozenset)
    phrases: tuple[str, ...] = ()
    domains: frozenset[str] = field(default_factory=frozenset)

    @property
    def active(self) -> bool:
        return self.languages is not None or bool(self.words or self.phrases or self.domains)


def load_blocklist(path: str | Path, what: str) -> list[str]:
    """The entries of a blocklist file: one per line, lower-cased; blank lines and ``#`` comments skipped.
    ValueError naming the file when it cannot be read or lists nothing."""
    try:
        lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} file {path} cannot be read ({type(exc).__name__}: {exc}); expected a UTF-8 text "
                         "file with one entry per line") from None
    entries = [line.strip().lower() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise ValueError(f"{what} file {path} lists nothing; expected one entry per line")
    return entries


def file_sha256(path: str | Path) -> str:
    """A blocklist's content hash (the shards are rebuilt when a list changes)."""
    return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()


def make_filters(languages: Iterable[str] | None, min_score: float, words_file: str | None,
                 urls_file: str | None) -> ContentFilters:
    """The filters of a ``text-shards`` config; ValueError naming an unknown language code or a bad file."""
    langs = None
    if languages is not None:
        langs = tuple(code.strip().lower() for code in languages)
        if not langs:
            raise ValueError("option 'languages' is empty; name the languages to keep (e.g. ['en']) or leave it unset")
        try:
            known = known_languages()
        except ImportError:
            raise ValueError("option 'languages' needs the lingua language detector: pip install "
                             "'registry-llm[langid]'") from None
        unknown = sorted(set(langs) - set(known))
        if unknown:
            raise ValueError(f"option 'languages' has {', '.join(map(repr, unknown))}, which lingua does not detect; "
                             f"expected ISO 639-1 codes among {', '.join(known)}")
    entries = load_blocklist(words_file, "blocklist_words") if words_file else []
    domains = load_blocklist(urls_file, "blocklist_urls") if urls_file else []
    tokens = [tuple(_WORD.findall(e)) for e in entries]  # matched as the text is: whole words, lower case
    return ContentFilters(langs, min_score, frozenset(t[0] for t in tokens if len(t) == 1),
                          tuple(" ".join(t) for t in tokens if len(t) > 1),
                          frozenset(d.removeprefix("www.").strip(".") for d in domains))


@cache
def known_languages() -> tuple[str, ...]:
    """ISO 639-1 codes of the languages lingua detects."""
    from lingua import Language

    return tuple(sorted(lang.iso_code_639_1.name.lower() for lang in Language.all()))


@cache
def _detector() -> Any:
    try:
        from lingua import LanguageDetectorBuilder
    except ImportError:
        raise ImportError("the language filter of text-shards needs lingua: pip install 'registry-llm[langid]'") from None
    # Low-accuracy mode: trigram models only, loaded on first use (tens of MB); fine for whole documents.
    return LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()


def detect_language(text: str) -> tuple[str | None, float]:
    """(ISO 639-1 code, confidence in [0, 1]) of ``text``'s most likely language; (None, 0.0) when none is found."""
    values = _detector().compute_language_confidence_values(text[:20_000])
    if not values or values[0].value <= 0.0:
        return None, 0.0
    # Rounded: the detector's last bits differ between processes (1 ulp seen), the decision must not.
    return values[0].language.iso_code_639_1.name.lower(), round(float(values[0].value), 6)


def _blocked_domain(host: str, domains: frozenset[str]) -> bool:
    host = host.lower().rstrip(".").removeprefix("www.")
    parts = host.split(".")
    return any(".".join(parts[i:]) in domains for i in range(len(parts)))


def content_reason(text: str, filters: ContentFilters) -> tuple[str | None, str | None, float | None]:
    """(why the document is dropped or None, its language, the language's confidence); the language is detected
    only when a language filter is set."""
    if filters.words or filters.phrases:
        words = [w.lower() for w in _WORD.findall(text)]
        if filters.words.intersection(words):
            return "blocklist_word", None, None
        if filters.phrases:
            joined = f" {' '.join(words)} "
            if any(f" {p} " in joined for p in filters.phrases):
                return "blocklist_word", None, None
    if filters.domains and any(_blocked_domain(h, filters.domains) for h in _URL_HOST.findall(text)):
        return "blocklist_url", None, None
    if filters.languages is None:
        return None, None, None
    lang, score = detect_language(text)
    if lang not in filters.languages or score < filters.min_language_score:
        return "language", lang, score
    return None, lang, score
