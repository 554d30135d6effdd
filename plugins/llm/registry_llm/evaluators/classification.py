"""Text classification metrics: ``text-classification`` scores the pipeline's classifier on a split (accuracy,
macro-F1, the confusion matrix), ``tfidf-baseline`` a TF-IDF + logistic regression model trained on the same
training texts, the floor a finetuned model has to clear."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from registry_llm.evaluators.specs import TextClassificationEvalConfig, TfidfBaselineConfig

__all__ = ["TextClassificationEval", "TfidfBaseline", "build", "build_tfidf", "scores"]


def scores(truth: np.ndarray, predicted: np.ndarray, classes: int) -> dict[str, Any]:
    """Accuracy, macro-F1 (every class weighs the same, an absent one scores 0) and the confusion matrix (rows:
    truth, columns: prediction)."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    tp = np.diag(matrix).astype(float)
    precision = np.divide(tp, matrix.sum(0), out=np.zeros(classes), where=matrix.sum(0) > 0)
    recall = np.divide(tp, matrix.sum(1), out=np.zeros(classes), where=matrix.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(classes), where=precision + recall > 0)
    return {"accuracy": float(tp.sum() / max(matrix.sum(), 1)), "macro_f1": float(f1.mean()),
            "confusion": matrix.tolist(), "f1": [round(float(x), 4) for x in f1]}


class TextClassificationEval:
    def __init__(self, config: TextClassificationEvalConfig) -> None:
        self.config = config

    @torch.no_grad()
    def evaluate(self, pipeline: Any, split: str = "val") -> dict[str, Any]:
        data = pipeline.data.dataset(split)
        if len(data) == 0:
            raise ValueError(f"text-classification: the {split!r} split has no texts")
        model = pipeline.model
        was = model.training
        model.eval()
        device = next(model.parameters()).device
        predicted = []
        try:
            for start in range(0, len(data), self.config.batch_size):
                ids = data.ids[start:start + self.config.batch_size].to(device)
                predicted.append(pipeline.objective.logits(pipeline.parts, ids).argmax(-1).cpu())
        finally:
            model.train(was)
        guessed, truth = torch.cat(predicted), data.labels
        if guessed.dim() == 2:  # token classification: every scored token counts
            scored = truth != -100
            guessed, truth = guessed[scored], truth[scored]
        return scores(truth.numpy(), guessed.numpy(), pipeline.data.num_classes)


class TfidfBaseline:
    def __init__(self, config: TfidfBaselineConfig) -> None:
        self.config = config

    def evaluate(self, pipeline: Any, split: str = "val") -> dict[str, Any]:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        splits = pipeline.data.splits()
        train_texts, train_labels = splits["train"]
        texts, labels = splits[split]
        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=self.config.min_df)
        model = LogisticRegression(max_iter=self.config.max_iter)
        model.fit(vectorizer.fit_transform(train_texts), train_labels)
        predicted = model.predict(vectorizer.transform(texts))
        return scores(np.asarray(labels), np.asarray(predicted), pipeline.data.num_classes)


def build(config: TextClassificationEvalConfig) -> TextClassificationEval:
    return TextClassificationEval(config)


def build_tfidf(config: TfidfBaselineConfig) -> TfidfBaseline:
    return TfidfBaseline(config)
