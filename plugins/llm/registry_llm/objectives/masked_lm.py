"""``masked-lm``: BERT's objective: choose 15% of the tokens, corrupt them 80/10/10, predict the originals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from registry_core.interfaces import ModelParts
from registry_llm.objectives._lm_head import LMHead
from registry_llm.objectives.specs import MaskedLMConfig

IGNORE = -100


class MaskedLMObjective(nn.Module):
    """``objective(parts, batch) -> (loss, {"loss", "tokens", "masked_share"})``.

    Reads ``batch["input_ids"]`` ``(B, T)`` (other keys, e.g. next-token ``targets``, are ignored) and an
    optional ``keep`` mask of real tokens (without one, tokens equal to ``pad_id`` are the padding). ``mask_id`` must be known: from the config (wired from the
    tokenizer's ``<|mask|>``) or as ``mask_id`` on the bound embedding. ``vocab_size`` comes from the
    config or the embedding's rows. In training, randomness uses torch's global RNG (seeded by the trainer)
    unless a ``generator`` is set on the objective; in eval mode each call draws from ``eval_seed``, so a
    validation pass is the same at every step and leaves the training RNG alone (as ``mae`` does).
    """

    #: ``tokens`` counts the chosen tokens the loss is a mean over: the trainer sums it and weighs the loss by it.
    count_metrics = ("tokens",)
    loss_weight = "tokens"

    def __init__(self, config: MaskedLMConfig) -> None:
        super().__init__()
        self.config = config
        self.mask_id = config.mask_id
        self.pad_id = config.pad_id
        self.head = LMHead("masked-lm", config.embed_dim, config.vocab_size, config.tie_weights,
                           transform=config.head == "bert", eps=config.head_eps)
        self.generator: torch.Generator | None = None
        #: Seed of the tokens chosen in eval mode (validation, evaluators), independent of training's RNG.
        self.eval_seed = 0

    @property
    def vocab_size(self) -> int | None:
        return self.head.vocab_size

    def bind(self, parts: ModelParts) -> None:
        self.head.bind(parts)
        if self.mask_id is None:
            self.mask_id = getattr(parts.embed, "mask_id", None)
        if self.pad_id is None:
            self.pad_id = getattr(parts.embed, "pad_id", None)
        if self.mask_id is None:
            raise ValueError(
                "objective 'masked-lm': mask_id is not set; pass mask_id=... (the tokenizer's <|mask|> id) "
                "or compose it with a tokenizer that provides mask_id"
            )
        if self.vocab_size is not None and not 0 <= self.mask_id < self.vocab_size:
            raise ValueError(
                f"objective 'masked-lm': mask_id {self.mask_id} is outside the vocabulary 0..{self.vocab_size - 1}"
            )

    def corrupt(self, ids: torch.Tensor, keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(corrupted ids, targets)``: targets hold the original id where chosen, -100 elsewhere."""
        if self.mask_id is None or self.vocab_size is None:
            raise RuntimeError("objective 'masked-lm' is not bound; call objective.bind(parts) first")
        cfg = self.config
        g = self.generator if self.training else torch.Generator(device=ids.device).manual_seed(self.eval_seed)
        eligible = torch.ones_like(ids, dtype=torch.bool)
        if self.pad_id is not None:
            eligible &= ids != self.pad_id
        if keep is not None:
            eligible &= keep.to(torch.bool)
        chosen = (torch.rand(ids.shape, generator=g, device=ids.device) < cfg.mask_prob) & eligible
        # One draw splits the chosen tokens: [0, replace_mask) -> mask, then random, the rest unchanged.
        u = torch.rand(ids.shape, generator=g, device=ids.device)
        to_mask = chosen & (u < cfg.replace_mask)
        to_random = chosen & (u >= cfg.replace_mask) & (u < cfg.replace_mask + cfg.replace_random)
        random_ids = torch.randint(0, self.vocab_size, ids.shape, generator=g, device=ids.device, dtype=ids.dtype)
        corrupted = torch.where(to_mask, torch.full_like(ids, self.mask_id), ids)
        corrupted = torch.where(to_random, random_ids, corrupted)
        targets = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
        return corrupted, targets

    def _keep(self, ids: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor | None:
        if keep is None and self.pad_id is not None and bool((ids == self.pad_id).any()):
            return ids != self.pad_id  # padded rows: real tokens do not attend to the padding
        return keep

    def hidden(self, parts: ModelParts, ids: torch.Tensor, *, keep: torch.Tensor | None = None,
               token_types: torch.Tensor | None = None) -> torch.Tensor:
        """Backbone output ``(B, T, D)`` for token ids ``(B, T)`` (BERT's segment ids as ``token_types``)."""
        extra = {"token_types": token_types} if token_types is not None else {}
        out: torch.Tensor = parts.backbone(parts.embed(ids), parts.positional, None, keep=keep, **extra)
        return out

    def logits(self, parts: ModelParts, ids: torch.Tensor, *, keep: torch.Tensor | None = None,
               token_types: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T, V)`` predictions at every position (fill-mask: read them where ``ids`` hold ``mask_id``)."""
        h = self.hidden(parts, ids, keep=self._keep(ids, keep), token_types=token_types)
        out: torch.Tensor = self.head(parts, h)
        return out

    def forward(self, parts: ModelParts, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        ids = batch["input_ids"]
        keep = self._keep(ids, batch.get("keep"))
        corrupted, targets = self.corrupt(ids, keep)
        h = self.hidden(parts, corrupted, keep=keep, token_types=batch.get("token_type_ids"))  # (B, T, D)
        chosen = targets != IGNORE
        n = int(chosen.sum())
        if n == 0:
            # Nothing chosen (tiny batch): a zero loss that still touches the graph, so backward works.
            loss = h.sum() * 0.0
        else:
            logits = self.head(parts, h[chosen])  # only the chosen positions: (N, V)
            loss = F.cross_entropy(logits.float(), targets[chosen])
        return loss, {"loss": float(loss.detach()), "tokens": float(n), "masked_share": n / max(ids.numel(), 1)}


def build(config: MaskedLMConfig) -> MaskedLMObjective:
    return MaskedLMObjective(config)
