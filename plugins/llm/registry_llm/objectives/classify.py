"""``classify``: supervised text classification through a ``[head]``.

The backbone reads the token ids (a causal one needs no padding mask: right padding never reaches an earlier
token; a bidirectional one gets the real-token mask), the head pools and scores, and the loss is cross-entropy
over the batch's texts. What trains is ``train``: ``head`` (backbone frozen, run without autograd), ``full``
(with layer-wise decay through ``lr_scales``), or ``lora`` (LoRA adapters on ``lora_targets`` and the head).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from registry_core.interfaces import ModelParts
from registry_llm.adapters.lora import add_lora
from registry_llm.objectives.specs import ClassifyConfig

__all__ = ["ADAPTERS_FILE", "ClassifyObjective", "build"]

#: A LoRA run's adapters and head, saved apart from the whole model.
ADAPTERS_FILE = "adapters.safetensors"


def _backbone_parts(parts: ModelParts) -> list[nn.Module]:
    return [m for m in (parts.embed, parts.positional, parts.backbone) if isinstance(m, nn.Module)]


class ClassifyObjective(nn.Module):
    """``objective(parts, batch) -> (loss, {"acc", "samples"})``; ``logits(parts, ids)`` for inference."""

    #: The loss is a mean over the batch's texts (or, for token classification, its labelled tokens):
    #: accumulation and ranks weigh each micro-batch by that count (``loss_weight``, set in ``bind``).
    count_metrics = ("samples", "labelled_tokens")
    loss_weight = "samples"

    def __init__(self, config: ClassifyConfig) -> None:
        super().__init__()
        self.config = config
        self.pad_id = config.pad_id
        self.adapted: list[str] = []
        #: True with a token-classification head (set in ``bind``): a class per token, not per text.
        self.per_token = False

    @property
    def num_classes(self) -> int:
        return int(self.config.num_classes or 0)

    def bind(self, parts: ModelParts) -> None:
        if parts.head is None:
            raise ValueError("objective 'classify' needs a [head] table (use = 'sequence-classification' or "
                             "'token-classification')")
        self.per_token = getattr(parts.head, "task", "classification") == "token-classification"
        self.loss_weight = "labelled_tokens" if self.per_token else "samples"
        if self.pad_id is None:
            self.pad_id = getattr(parts.embed, "pad_id", None)
        cfg = self.config
        if cfg.train in ("head", "lora"):
            for module in _backbone_parts(parts):
                module.requires_grad_(False)
        if cfg.train == "lora":
            self.adapted = add_lora(parts.backbone, cfg.lora_targets, cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout)

    def keep_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` True at real tokens (all True without a pad id)."""
        return ids != self.pad_id if self.pad_id is not None else torch.ones_like(ids, dtype=torch.bool)

    def logits(self, parts: ModelParts, ids: torch.Tensor) -> torch.Tensor:
        """``(B, num_classes)`` class scores of token ids ``(B, T)``."""
        assert parts.head is not None, "objective 'classify' is not bound to a model with a head"
        keep = self.keep_mask(ids)
        causal = bool(getattr(parts.backbone, "causal", True))
        frozen = self.config.train == "head"
        with torch.no_grad() if frozen else contextlib.nullcontext():
            x = parts.embed(ids)
            hidden = parts.backbone(x, parts.positional, None, keep=None if causal else keep)
        # a text's head may read the backbone's own pooler (BERT); a token head scores every position
        out: torch.Tensor = parts.head(hidden, keep) if self.per_token else parts.head(hidden, keep, parts.backbone)
        return out

    def forward(self, parts: ModelParts, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        if "label" not in batch:
            raise KeyError("objective 'classify' needs labelled samples (a text-labels data source)")
        logits = self.logits(parts, batch["input_ids"])
        label = batch["label"].to(logits.device).long()
        if self.per_token:
            return self._token_loss(logits, label)
        if bool(((label < 0) | (label >= logits.shape[1])).any()):
            raise ValueError(f"objective 'classify': labels {sorted(set(label.tolist()))} are outside the "
                             f"{logits.shape[1]} classes")
        loss = F.cross_entropy(logits.float(), label, label_smoothing=self.config.label_smoothing)
        correct = (logits.argmax(dim=1) == label).float().mean()
        return loss, {"acc": correct, "samples": torch.tensor(float(label.numel()), device=logits.device)}

    def _token_loss(self, logits: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """Cross-entropy over the labelled tokens (-100: not scored); 0, not NaN, for a batch without any."""
        scored = label != -100
        count = scored.sum()
        if not bool(scored.any()):
            return logits.sum() * 0.0, {"acc": count.float(), "labelled_tokens": count.float()}
        loss = F.cross_entropy(logits.flatten(0, 1).float(), label.flatten(), ignore_index=-100,
                               label_smoothing=self.config.label_smoothing)
        correct = ((logits.argmax(dim=-1) == label) & scored).sum().float() / count.float()
        return loss, {"acc": correct, "labelled_tokens": count.float()}

    def save_apart(self, parts: ModelParts, out_dir: Path) -> dict[str, Path]:
        """With LoRA: ``adapters.safetensors`` beside the whole model, the adapters and the head alone (kilobytes,
        not the backbone), which ``text-run`` with ``adapters = RUN`` puts back onto the base run's backbone."""
        if not self.adapted:
            return {}
        from safetensors.torch import save_file

        from registry_core.atomic import atomic_path
        from registry_llm.adapters.lora import lora_state

        tensors = {f"backbone.{k}": v for k, v in lora_state(parts.backbone).items()}
        if isinstance(parts.head, nn.Module):
            tensors.update({f"head.{k}": v for k, v in parts.head.state_dict().items()})
        target = Path(out_dir) / ADAPTERS_FILE
        with atomic_path(target) as tmp:
            save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp),
                      metadata={"format": "pt", "lora_rank": str(self.config.lora_rank),
                                "lora_alpha": str(self.config.lora_alpha)})
        return {ADAPTERS_FILE: target}

    def lr_scales(self, parts: ModelParts) -> dict[int, float]:
        """Layer-wise decay with train='full' (``registry_core.training.layer_decay_scales``): block i of L at
        decay^(L - i), embeddings at decay^(L + 1)."""
        from registry_core.training.optim import layer_decay_scales

        return layer_decay_scales(parts, self.config.layer_decay) if self.config.train == "full" else {}

def build(config: ClassifyConfig) -> ClassifyObjective:
    return ClassifyObjective(config)
