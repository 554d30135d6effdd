"""The light manifest of this folder's components: config schemas and specs (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from registry_core import ComponentSpec, option
from registry_core.choices import HubSource

#: Gopher rule names (reject reasons), in the order they are checked, and the thresholds each one uses.
RULE_THRESHOLDS: dict[str, tuple[str, ...]] = {
    "too_few_words": ("min_words",),
    "too_many_words": ("max_words",),
    "mean_word_length": ("min_mean_word_length", "max_mean_word_length"),
    "symbol_word_ratio": ("max_symbol_word_ratio",),
    "bullet_lines": ("max_bullet_lines",),
    "ellipsis_lines": ("max_ellipsis_lines",),
    "alpha_words": ("min_alpha_words",),
    "stop_words": ("min_stop_words",),
    "dup_line_fraction": ("max_dup_line_fraction",),
    "dup_paragraph_fraction": ("max_dup_paragraph_fraction",),
    "dup_line_chars": ("max_dup_line_chars",),
    "dup_paragraph_chars": ("max_dup_paragraph_chars",),
    "top_ngram_chars": ("max_top_ngram_chars",),
    "dup_ngram_chars": ("max_dup_ngram_chars",),
}


@dataclass
class TextShardsConfig(HubSource):
    """Options of ``text-shards``: local text (or a hub dataset's shards: ``hub`` + ``files`` patterns) -> clean ->
    filter -> dedup -> tokenize -> token shards.

    The tokenizer is not an option: the pipeline hands the built one over with ``attach_tokenizer(tok)``.
    """

    paths: list[str] = option(
        [],
        help="input globs (.txt, .jsonl, .parquet; folders are searched recursively); empty: the embedded "
        "corpus of Python's pydoc_data/topics.py",
    )
    out: Path = option(
        Path("text-shards"),
        help="folder for the shards and manifest.json; a relative one lies inside the run folder under `run`",
    )
    seq_len: int = option(256, help="tokens per training window (each item reads seq_len + 1)", min=1)
    val_fraction: float = option(
        0.05,
        help="share of tokens held out for the 'val' split: the documents at the end of the stream, "
        "from the document boundary nearest (1 - val_fraction) of all tokens (0: no val split)",
        min=0.0,
        max=0.5,
    )
    repo_type: str = option("dataset", help="'dataset' or 'model' repo (with `hub`)", choices=("model", "dataset"))
    max_documents: int | None = option(None, help="read at most this many documents (the budget of a hub dataset, "
                                       "or of local files); None: all", min=1)
    max_bytes: int | None = option(None, help="with `hub`: pull only the first shards whose sizes add up to this many "
                                   "bytes (at least one), so a 10-billion-token corpus is not pulled by accident; "
                                   "None: every matching shard", min=1)
    text_field: str = option("text", help="field (jsonl) or column (parquet) holding the document text")
    txt_documents: Literal["file", "blank-lines"] = option(
        "file", help=".txt files: one document per file, or one per blank-line-separated block"
    )
    errors: Literal["skip", "raise"] = option(
        "skip", help="invalid UTF-8 or unreadable files/lines: count and skip them, or raise naming the input"
    )
    dedup: Literal["none", "exact", "minhash"] = option(
        "minhash", help="drop exact duplicates (hash of normalised text) or near duplicates too (MinHash LSH)"
    )
    minhash_ngram: int = option(5, help="MinHash shingles: word n-grams of this length", min=1)
    minhash_bands: int = option(14, help="MinHash LSH bands", min=1)
    minhash_rows: int = option(8, help="MinHash LSH rows per band (permutations = bands x rows)", min=1)
    minhash_seed: int = option(1, help="seed of the MinHash permutations")
    quality_filter: bool = option(True, help="apply the Gopher quality rules below (false: keep every document)")
    disable_rules: list[str] = option(
        [], help="Gopher rules to switch off by name (in TOML, where there is no None): " + ", ".join(RULE_THRESHOLDS)
    )
    min_words: int | None = option(50, help="Gopher: fewer words rejects the document (None: rule off)")
    max_words: int | None = option(100_000, help="Gopher: more words rejects the document (None: rule off)")
    min_mean_word_length: float | None = option(3.0, help="Gopher: mean word length below this rejects")
    max_mean_word_length: float | None = option(10.0, help="Gopher: mean word length above this rejects")
    max_symbol_word_ratio: float | None = option(0.1, help="Gopher: ('#' + ellipses) per word above this rejects")
    max_bullet_lines: float | None = option(0.9, help="Gopher: share of lines starting with a bullet above this")
    max_ellipsis_lines: float | None = option(0.3, help="Gopher: share of lines ending in an ellipsis above this")
    min_alpha_words: float | None = option(0.8, help="Gopher: share of words with a letter below this rejects")
    min_stop_words: int | None = option(2, help="Gopher: fewer of the 8 stop words (the, be, to, of, ...) rejects")
    max_dup_line_fraction: float | None = option(0.3, help="Gopher: share of repeated lines above this rejects")
    max_dup_paragraph_fraction: float | None = option(0.3, help="Gopher: share of repeated paragraphs above this")
    max_dup_line_chars: float | None = option(0.2, help="Gopher: share of characters in repeated lines above this")
    max_dup_paragraph_chars: float | None = option(0.2, help="Gopher: share of characters in repeated paragraphs")
    max_top_ngram_chars: list[float] | None = option(
        [0.20, 0.18, 0.16], help="Gopher: for word 2-, 3-, 4-grams, the share of characters the most common covers"
    )
    max_dup_ngram_chars: list[float] | None = option(
        [0.15, 0.14, 0.13, 0.12, 0.11, 0.10],
        help="Gopher: for word 5- to 10-grams, the share of characters inside repeated n-grams",
    )
    languages: list[str] | None = option(None, help="keep only documents in these languages (ISO 639-1 codes, e.g. "
                                         "['en']; detected by lingua, registry-llm[langid]); None: any language")
    min_language_score: float = option(0.5, help="with `languages`: the least confidence (0..1) of the detected "
                                       "language a kept document needs", min=0.0, max=1.0)
    blocklist_words: str | None = option(None, help="file of words or phrases, one per line (C4 style): a document "
                                         "holding one (whole words, any case) is dropped; None: off")
    blocklist_urls: str | None = option(None, help="file of domains, one per line: a document linking to one (or a "
                                        "subdomain) is dropped; None: off")
    rejects: Path | None = option(
        None, help="jsonl file listing every rejected document or input with its reason (None: counts only)"
    )
    documents: Path | None = option(None, help="jsonl file with a line per document read: origin, kept or the reason "
                                    "it was dropped, and (with `languages`) its language and confidence")
    append_eos: bool = option(True, help="end every document with the tokenizer's eos token in the shards")
    shard_tokens: int = option(16_000_000, help="start a new shard once one holds this many tokens", min=1)
    workers: int = option(
        1, help="processes for cleaning, filtering, signatures and tokenizing (1: in this process)", min=1, max=256
    )
    batch_documents: int = option(256, help="documents per unit of work (bounds memory per worker)", min=1)
    verify_checksums: bool = option(True, help="check every shard's sha256 when a dataset is opened (sizes always)")

    def __post_init__(self) -> None:
        self.check_source("text-shards", bool(self.paths), required=False, local="paths")
        if self.hub is not None and not self.files:
            raise ValueError("option 'files' names the hub dataset's shards to read (patterns such as "
                             "'data/train-*.parquet')")
        unknown = [r for r in self.disable_rules if r not in RULE_THRESHOLDS]
        if unknown:
            raise ValueError(
                f"disable_rules: unknown rule(s) {', '.join(map(repr, unknown))}; "
                f"known rules: {', '.join(RULE_THRESHOLDS)}"
            )


@dataclass(kw_only=True)
class _Classes:
    """The class names of a labelled source, in label-id order; ``num_classes`` and ``class_names`` are its ports."""

    classes: list[str] = option(help="the class names, in label-id order; a label that is not one of them is an "
                                "error naming it")

    def __post_init__(self) -> None:
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            raise ValueError(f"option 'classes' needs at least two distinct names, got {self.classes}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        return list(self.classes)


@dataclass(kw_only=True)
class TextLabelsConfig(_Classes):
    """Labelled texts for classification: a file of (text, label) rows, tokenized to fixed-length samples."""

    path: str = option(help="labelled texts: a .jsonl, .csv or .parquet file with a text and a label field")
    text_field: str = option("text", help="field (jsonl), column (csv, parquet) holding the text")
    label_field: str = option("label", help="field or column holding the class name")
    seq_len: int = option(128, help="tokens per sample: longer texts are cut, shorter ones padded", min=2)
    val_fraction: float = option(0.2, help="share of each class held out for validation (stratified, seeded)",
                                 min=0.0, max=0.9)
    labels_per_class: int | None = option(None, help="train on at most this many labelled texts per class (the "
                                          "few-label curve); validation stays the same; None: all", min=1)
    append_eos: bool = option(True, help="end each text with the tokenizer's eos token (the token a causal model's "
                              "last-token pooling reads)")
    seed: int = option(0, help="seed of the split and of which texts a labels_per_class budget keeps")


#: The default chat template (tokenizer_config.json's ``chat_template`` convention: Jinja over ``messages`` with
#: ``role`` and ``content``, and ``add_generation_prompt``).
DEFAULT_TEMPLATE = ("{% for m in messages %}### {{ 'Question' if m.role == 'user' else 'Answer' }}:\n{{ m.content }}\n"
                    "{% endfor %}{% if add_generation_prompt %}### Answer:\n{% endif %}")


@dataclass(kw_only=True)
class InstructionPairsConfig:
    """(prompt, response) pairs for instruction tuning, rendered by a chat template, packed into windows."""

    path: str = option(help="the pairs: a .jsonl, .csv or .parquet file with a prompt and a response field")
    prompt_field: str = option("prompt", help="field or column holding the prompt")
    response_field: str = option("response", help="field or column holding the response")
    template: str = option(DEFAULT_TEMPLATE, help="chat template (Jinja, the convention of tokenizer_config.json's "
                           "chat_template): renders `messages` (role, content) and, with add_generation_prompt, the "
                           "start of the answer; it must render the assistant's message")
    seq_len: int = option(256, help="tokens per window", min=8)
    pack: bool = option(True, help="pack several pairs into one window (attention and positions stay inside each "
                        "pair); false: one pair per window, padded")
    truncate: bool = option(False, help="cut a pair longer than seq_len at its end; false: such a pair is an error "
                            "that says by how many tokens it is too long")
    val_fraction: float = option(0.1, help="share of the pairs held out (seeded)", min=0.0, max=0.9)
    seed: int = option(0, help="seed of the split")


@dataclass(kw_only=True)
class TokenLabelsConfig(_Classes):
    """Texts with labelled character spans (NER style) for token classification: each token takes its span's label."""

    path: str = option(help="a .jsonl file: a text field and a spans field of [start, end, label] character offsets")
    text_field: str = option("text", help="field holding the text")
    spans_field: str = option("spans", help="field holding the [start, end, label] spans")
    seq_len: int = option(256, help="tokens per sample: longer texts are cut, shorter ones padded", min=2)
    val_fraction: float = option(0.2, help="share of the texts held out (seeded)", min=0.0, max=0.9)
    seed: int = option(0, help="seed of the split")


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="data_source",
        name="text-shards",
        target="registry_llm.data.text_shards:build_text_shards",
        summary="Local text (or the embedded pydoc corpus) cleaned, Gopher-filtered, deduped, tokenized to shards.",
        modality="text",
        tags=("llm", "text", "shards", "dedup"),
        config=TextShardsConfig,
        provides={"tokens": "discrete", "seq_len": None},
    ),
    ComponentSpec(
        kind="data_source",
        name="text-labels",
        target="registry_llm.data.text_labels:build",
        summary="Labelled texts (jsonl / csv / parquet) for sequence classification: stratified seeded split, a "
        "labels-per-class budget, fixed-length padded samples.",
        modality="text",
        tags=("llm", "text", "labels", "finetuning"),
        config=TextLabelsConfig,
        provides={"tokens": "discrete", "seq_len": None, "task": "classification", "num_classes": None,
                  "class_names": None},
    ),
    ComponentSpec(
        kind="data_source",
        name="instruction-pairs",
        target="registry_llm.data.instruction_pairs:build",
        summary="(prompt, response) pairs through a chat template, packed without cross-pair attention; the loss "
        "counts response tokens only.",
        modality="text",
        tags=("llm", "text", "instruction-tuning", "sft"),
        config=InstructionPairsConfig,
        provides={"tokens": "discrete", "seq_len": None},
    ),
    ComponentSpec(
        kind="data_source",
        name="token-labels",
        target="registry_llm.data.token_labels:build",
        summary="Texts with labelled character spans for token classification: each token takes the label of the "
        "span it starts in (others are not scored).",
        modality="text",
        tags=("llm", "text", "labels", "finetuning"),
        config=TokenLabelsConfig,
        provides={"tokens": "discrete", "seq_len": None, "task": "token-classification", "num_classes": None,
                  "class_names": None},
    ),
]
