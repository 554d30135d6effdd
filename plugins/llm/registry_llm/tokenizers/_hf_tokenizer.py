"""What ``bpe`` and ``wordpiece`` share: a Hugging Face ``tokenizers.Tokenizer`` (once trained or loaded), its
sizes, its JSON form and hash, and the embedding table the model side gets."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, ClassVar

from tokenizers import Tokenizer

__all__ = ["HFTokenizer"]


class HFTokenizer:
    """Base of the text tokenizers: ``config`` (with ``vocab_size``, ``padded_vocab_size``, ``pad_multiple``) and
    ``_tok``, the library tokenizer or None before training. Subclasses give ``name``, ``pad_id`` and ``mask_id``."""

    #: The component's name, for messages.
    name: ClassVar[str]
    config: Any
    _tok: Tokenizer | None

    @property
    def trained(self) -> bool:
        return self._tok is not None

    @property
    def hf(self) -> Tokenizer:
        """The underlying ``tokenizers.Tokenizer``; a clear error before training or loading."""
        if self._tok is None:
            raise RuntimeError(f"the {self.name} tokenizer has no vocabulary yet: call train(texts) or give path=")
        return self._tok

    @property
    def vocab_size(self) -> int:
        """The true vocabulary size (specials included); the training target before training."""
        return self._tok.get_vocab_size() if self._tok is not None else int(self.config.vocab_size)

    @property
    def padded_vocab_size(self) -> int:
        """Rows of the embedding table: the vocabulary rounded up to ``pad_multiple`` (GPU-friendly shapes)."""
        if self.config.padded_vocab_size is not None:
            return int(self.config.padded_vocab_size)
        m = int(self.config.pad_multiple)
        return -(-self.vocab_size // m) * m

    @property
    def pad_id(self) -> int | None:
        raise NotImplementedError

    @property
    def mask_id(self) -> int | None:
        raise NotImplementedError

    def id_to_token(self, index: int) -> str | None:
        return self.hf.id_to_token(index)

    def to_json(self) -> str:
        """The tokenizer.json text that ``save`` writes (and that ``sha256`` hashes)."""
        return self.hf.to_str()

    @property
    def sha256(self) -> str:
        """sha256 of the saved tokenizer.json content; recorded in shard manifests and the pipeline lock."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def resolved_config(self) -> Any:
        """The config with the true ``vocab_size`` and ``padded_vocab_size`` filled in (for the lock/config)."""
        return dataclasses.replace(self.config, vocab_size=self.vocab_size, padded_vocab_size=self.padded_vocab_size)

    def embedding(self, embed_dim: int) -> Any:
        """A fresh ``nn.Embedding(padded_vocab_size, embed_dim)`` initialised N(0, 0.02)."""
        import torch  # deferred: encoding-only users do not pay for torch
        from torch import nn

        table = nn.Embedding(self.padded_vocab_size, embed_dim)
        with torch.no_grad():
            nn.init.normal_(table.weight, mean=0.0, std=0.02)
        # Objectives read these when their own config leaves them unset (padding, masked-LM).
        table.pad_id = self.pad_id  # type: ignore[assignment]
        table.mask_id = self.mask_id  # type: ignore[assignment]
        return table

    def __repr__(self) -> str:
        state = f"vocab_size={self.vocab_size}" if self.trained else "untrained"
        return f"<{type(self).__name__} {state} padded={self.padded_vocab_size}>"
