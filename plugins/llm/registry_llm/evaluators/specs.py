"""Config schemas and specs of the language-model evaluators (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, option


@dataclass
class PerplexityConfig:
    """A full, token-weighted pass over one split: mean loss, perplexity and bits per byte."""

    batch_size: int = option(8, help="Windows per forward pass.", min=1)
    max_batches: int | None = option(None, help="Stop after this many batches (None: the whole split).", min=1)


@dataclass
class UnigramConfig:
    """The unigram baseline: train-split token frequencies scored on the evaluated split."""

    max_windows: int | None = option(None, help="Count frequencies over at most this many train windows (None: all).",
                                     min=1)


@dataclass
class TextClassificationEvalConfig:
    """Accuracy, macro-F1 and the confusion matrix of a classifier over a whole split."""

    batch_size: int = option(64, help="texts per forward pass", min=1)


@dataclass
class TfidfBaselineConfig:
    """The non-neural baseline on the same split: TF-IDF of word 1-2 grams and logistic regression (scikit-learn)."""

    min_df: int = option(1, help="ignore words seen in fewer training texts", min=1)
    max_iter: int = option(2000, help="logistic regression iterations", min=1)


@dataclass
class FewLabelsConfig:
    """Macro-F1 against labels per class: a linear probe on the frozen backbone's features and TF-IDF + LR."""

    labels_per_class: list[int] = option([16, 64, 256], help="budgets of labels per class (all of them is always "
                                         "added; a budget no class is short of is the same as all, and skipped)",
                                         min=1)
    batch_size: int = option(64, help="texts per forward pass when reading the features", min=1)
    probe_c: float = option(1.0, help="inverse L2 strength of the probe's logistic regression", min=1e-6)
    max_iter: int = option(2000, help="logistic regression iterations", min=1)


@dataclass
class InstructionEvalConfig:
    """Held-out pairs: the response loss, and greedy answers scored by exact match and token F1."""

    max_pairs: int | None = option(None, help="answer at most this many held-out pairs (None: all)", min=1)
    max_new_tokens: int = option(96, help="longest answer generated", min=1)


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="evaluator",
        name="perplexity",
        target="registry_llm.evaluators.perplexity:build",
        summary="Token-weighted loss, perplexity and bits per byte over a whole split (causal LM).",
        modality="text",
        tags=("lm", "perplexity"),
        config=PerplexityConfig,
        requires={"causal": True, "tokens": "discrete"},
    ),
    ComponentSpec(
        kind="evaluator",
        name="unigram-baseline",
        target="registry_llm.evaluators.unigram:build",
        summary="Loss of a unigram model (train-split token frequencies): the floor a language model must beat.",
        modality="text",
        tags=("lm", "baseline"),
        config=UnigramConfig,
        requires={"tokens": "discrete"},
    ),
    ComponentSpec(
        kind="evaluator",
        name="text-classification",
        target="registry_llm.evaluators.classification:build",
        summary="Accuracy, macro-F1 and the confusion matrix of a text classifier over a whole split.",
        modality="text",
        tags=("classification", "finetuning"),
        config=TextClassificationEvalConfig,
    ),
    ComponentSpec(
        kind="evaluator",
        name="tfidf-baseline",
        target="registry_llm.evaluators.classification:build_tfidf",
        summary="TF-IDF (word 1-2 grams) + logistic regression on the same labelled split: the non-neural floor.",
        modality="text",
        tags=("classification", "baseline"),
        config=TfidfBaselineConfig,
        requires={"task": "classification"},
    ),
    ComponentSpec(
        kind="evaluator",
        name="few-labels",
        target="registry_llm.evaluators.few_labels:build",
        summary="Macro-F1 against labels per class (16, 64, 256, all): a linear probe on the frozen backbone's "
        "features and TF-IDF + logistic regression, on one held-out split.",
        modality="text",
        tags=("classification", "baseline", "few-shot"),
        config=FewLabelsConfig,
        requires={"task": "classification"},
    ),
    ComponentSpec(
        kind="evaluator",
        name="instruction-eval",
        target="registry_llm.evaluators.instruction:build",
        summary="Instruction tuning on held-out pairs: response loss, and greedy answers (the chat template "
        "applied) scored by exact match and token F1.",
        modality="text",
        tags=("instruction-tuning", "sft"),
        config=InstructionEvalConfig,
        requires={"causal": True, "tokens": "discrete"},
    ),
]
