"""``few-labels``: how far a few labels go. Macro-F1 on one held-out split against labels per class, for a linear
probe on the backbone's frozen features (what the run started from: LoRA adapters switched off) and for TF-IDF +
logistic regression on the words, each trained on the first k texts of every class of the training split (the
nested subsets the data source's ``labels_per_class`` picks), for each k and for all of them.

The probe is the standard reading of a pretrained representation (a linear layer on the pooled hidden state the
run's head reads, fitted to convergence by scikit-learn), so the curve costs one forward pass over the texts, not
a training run per budget; ``bench/llm_few_labels.py`` trains every budget in full (head, LoRA, random init).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from registry_llm.evaluators.classification import scores
from registry_llm.evaluators.specs import FewLabelsConfig

__all__ = ["FewLabels", "build", "first_per_class"]


def first_per_class(labels: list[int] | np.ndarray, k: int | None) -> np.ndarray:
    """Indices of the first ``k`` items of every class, in order (all of them for None)."""
    seen: dict[int, int] = {}
    keep = []
    for i, label in enumerate(np.asarray(labels).tolist()):
        if k is None or seen.get(label, 0) < k:
            keep.append(i)
            seen[label] = seen.get(label, 0) + 1
    return np.asarray(keep, dtype=np.int64)


class FewLabels:
    def __init__(self, config: FewLabelsConfig) -> None:
        self.config = config

    @torch.no_grad()
    def _features(self, pipeline: Any, ids: torch.Tensor) -> np.ndarray:
        """``(N, D)`` pooled hidden states of the backbone with any adapters off (the head's own pooling)."""
        from registry_llm.adapters.lora import lora_disabled
        from registry_llm.heads.sequence import pool_hidden

        parts, objective, model = pipeline.parts, pipeline.objective, pipeline.model
        pool = getattr(parts.head, "pool", "last")
        causal = bool(getattr(parts.backbone, "causal", True))
        device = next(model.parameters()).device
        was = model.training
        model.eval()
        out = []
        try:
            with lora_disabled(parts.backbone) if isinstance(parts.backbone, torch.nn.Module) else contextlib.nullcontext():
                for start in range(0, len(ids), self.config.batch_size):
                    batch = ids[start:start + self.config.batch_size].to(device)
                    keep = objective.keep_mask(batch)
                    hidden = parts.backbone(parts.embed(batch), parts.positional, None, keep=None if causal else keep)
                    features = getattr(parts.head, "features", None)
                    vector = (features(hidden, keep, parts.backbone) if callable(features)
                              else pool_hidden(hidden, keep, pool))
                    out.append(vector.float().cpu())
        finally:
            model.train(was)
        return torch.cat(out).numpy()

    def evaluate(self, pipeline: Any, split: str = "val") -> dict[str, Any]:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        cfg, data = self.config, pipeline.data
        if getattr(getattr(pipeline.objective, "config", None), "train", None) == "full":
            raise ValueError("few-labels probes the backbone the run started from, which train = 'full' changed; "
                             "use it with train = 'head' or 'lora'")
        train, held = data.dataset("train"), data.dataset(split)
        if len(held) == 0:
            raise ValueError(f"few-labels: the {split!r} split has no texts")
        texts, labels = data.splits()["train"]
        held_texts, held_labels = data.splits()[split]
        train_x, held_x = self._features(pipeline, train.ids), self._features(pipeline, held.ids)
        counts = np.bincount(np.asarray(labels), minlength=data.num_classes)
        budgets: list[int | None] = [k for k in sorted(set(cfg.labels_per_class)) if k < int(counts.max())]
        budgets.append(None)
        out: dict[str, Any] = {"labels_per_class": [], "train_texts": [], "probe_macro_f1": [], "tfidf_macro_f1": [],
                               "probe_accuracy": [], "tfidf_accuracy": [], "features": int(train_x.shape[1])}
        truth = np.asarray(held_labels)
        for k in budgets:
            pick = first_per_class(labels, k)
            chosen = np.asarray(labels)[pick]
            probe = make_pipeline(StandardScaler(), LogisticRegression(C=cfg.probe_c, max_iter=cfg.max_iter))
            probe.fit(train_x[pick], chosen)
            probe_scores = scores(truth, probe.predict(held_x), data.num_classes)
            words = make_pipeline(TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2)),
                                  LogisticRegression(max_iter=cfg.max_iter))
            words.fit([texts[i] for i in pick], chosen)
            tfidf_scores = scores(truth, words.predict(held_texts), data.num_classes)
            out["labels_per_class"].append(k)  # None: all of them
            out["train_texts"].append(len(pick))
            for name, found in (("probe", probe_scores), ("tfidf", tfidf_scores)):
                out[f"{name}_macro_f1"].append(round(found["macro_f1"], 4))
                out[f"{name}_accuracy"].append(round(found["accuracy"], 4))
        return out


def build(config: FewLabelsConfig) -> FewLabels:
    return FewLabels(config)
