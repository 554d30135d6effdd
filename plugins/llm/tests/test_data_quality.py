"""Text cleaning and each Gopher quality rule of the text-shards data source."""

from __future__ import annotations

import dataclasses

import pytest

from registry_llm.data.gopher_filters import RULE_NAMES, QualityRules, quality_reason
from registry_llm.data.text_cleaning import clean_text, dedup_key_text

GOOD = """The river town woke slowly in the grey light of an early spring morning.
Fishermen carried their nets down to the water, and the baker opened his shutters with a loud bang.
Children ran along the muddy lanes toward the small school that stood beside the old stone church.
A merchant from the coast had arrived the night before with bolts of bright cloth and jars of spice.
By noon the market square was crowded with farmers who had walked in from the surrounding valleys.
They argued about prices, traded news of the harvest, and complained that the roads were still flooded.
Nobody noticed the stranger who sat quietly under the chestnut tree, writing in a worn leather notebook.
When evening came he paid for a room at the inn and asked the keeper whether the ferry still ran."""

ALL_OFF = QualityRules(**{f.name: None for f in dataclasses.fields(QualityRules)})


def only(**thresholds: object) -> QualityRules:
    """Rules with every check off except the given ones."""
    return dataclasses.replace(ALL_OFF, **thresholds)


def test_clean_text_nfc_and_whitespace() -> None:
    raw = "\ufeffCafe\u0301\r\nline two  \t\r\n\n\n\nnext\u00a0word\u200b here\x07  \n"
    assert clean_text(raw) == "Café\nline two\n\nnext word here"
    # indentation survives (code and verse need it)
    assert clean_text("def f():\n    return 1\n") == "def f():\n    return 1"
    assert dedup_key_text("Hello   World\n\nAGAIN") == "hello world again"


def test_good_document_passes_all_default_rules() -> None:
    assert quality_reason(GOOD, QualityRules()) is None
    assert quality_reason(GOOD, ALL_OFF) is None


REPEATED_LINE = "A line that repeats over and over in this document"

CASES: list[tuple[str, str, dict[str, object]]] = [
    ("too_few_words", "the cat and the dog sat with me", {"min_words": 50}),
    ("too_many_words", " ".join(f"word{i}" for i in range(2_000)), {"max_words": 1_000}),
    ("mean_word_length", " ".join(["a", "of", "to", "the"] * 20), {"min_mean_word_length": 3.0}),
    ("mean_word_length", " ".join(["internationalisation"] * 60), {"max_mean_word_length": 10.0}),
    ("symbol_word_ratio", GOOD + " " + " ".join(["#tag"] * 25), {"max_symbol_word_ratio": 0.1}),
    ("bullet_lines", "\n".join("- " + ln for ln in GOOD.split("\n")), {"max_bullet_lines": 0.9}),
    ("bullet_lines", "\n".join("• " + ln for ln in GOOD.split("\n")), {"max_bullet_lines": 0.9}),
    ("ellipsis_lines", "\n".join(ln + "..." for ln in GOOD.split("\n")), {"max_ellipsis_lines": 0.3}),
    ("ellipsis_lines", "\n".join(ln + "…" for ln in GOOD.split("\n")), {"max_ellipsis_lines": 0.3}),
    ("alpha_words", GOOD + " " + " ".join(str(i) for i in range(60)), {"min_alpha_words": 0.8}),
    ("stop_words", " ".join(f"banana{i} orchard{i} window{i}" for i in range(30)), {"min_stop_words": 2}),
    ("dup_line_fraction", GOOD + ("\n" + REPEATED_LINE) * 6, {"max_dup_line_fraction": 0.3}),
    ("dup_paragraph_fraction", "\n\n".join([GOOD, "Short para here.", "Short para here.", "Short para here."]),
     {"max_dup_paragraph_fraction": 0.3}),
    ("dup_line_chars", GOOD + ("\n" + GOOD.split("\n")[1]) * 3, {"max_dup_line_chars": 0.2}),
    ("dup_paragraph_chars", GOOD + "\n\n" + GOOD, {"max_dup_paragraph_chars": 0.2}),
    ("top_ngram_chars", GOOD + " " + " ".join(["ferry ran"] * 40), {"max_top_ngram_chars": [0.20, 0.18, 0.16]}),
    ("dup_ngram_chars", GOOD + " " + GOOD.split("\n")[2] + " " + GOOD.split("\n")[3],
     {"max_dup_ngram_chars": [0.15, 0.14, 0.13, 0.12, 0.11, 0.10]}),
]


@pytest.mark.parametrize(("reason", "text", "thresholds"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_rejects_and_can_be_switched_off(reason: str, text: str, thresholds: dict[str, object]) -> None:
    assert reason in RULE_NAMES
    assert quality_reason(text, only(**thresholds)) == reason
    # the rule switched off: nothing else is on, so the document passes
    assert quality_reason(text, ALL_OFF) is None


def test_every_rule_has_a_case() -> None:
    assert {c[0] for c in CASES} == set(RULE_NAMES)


def test_defaults_reject_by_the_expected_rule() -> None:
    rules = QualityRules()
    assert quality_reason("too short to keep", rules) == "too_few_words"
    assert quality_reason(GOOD + "\n\n" + GOOD, rules) in {"dup_line_fraction", "dup_paragraph_fraction"}
    assert quality_reason("\n".join("- " + ln for ln in GOOD.split("\n")), rules) == "bullet_lines"
