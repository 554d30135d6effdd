"""The interface of each core component kind, written so that the text and the imagery stacks fit.

These are structural (``typing.Protocol``): a component conforms by having the members, not by
inheriting. Nothing here imports torch; tensor types are spelled ``Any``.

How the parts meet in a model (``Pipeline.build``)::

    embed = tokenizer.embedding(embed_dim)            # ids (B, T) or patches (B, N, P) -> (B, T, D)
    parts = ModelParts(embed, positional, backbone, objective, head)   # the whole model
    objective.bind(parts)                              # e.g. tie the LM head, create an MAE decoder
    head.bind(parts)                                   # (when the head has bind) size it from the backbone
    weights.load_into(parts)                           # fills the parts named in weights.fills
    loss, metrics = objective(parts, batch)            # runs embed -> backbone -> head -> loss
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Final, Literal, Protocol, runtime_checkable

from registry_core.choices import PositionMode

__all__ = [
    "PART_GROUPS",
    "Backbone",
    "DataSource",
    "Evaluator",
    "Head",
    "ModelParts",
    "Objective",
    "PositionalEncoder",
    "Recipe",
    "SampleDataset",
    "Tokenizer",
    "Weights",
]

TokenType = Literal["discrete", "continuous"]


@runtime_checkable
class SampleDataset(Protocol):
    """Map-style samples: ``len`` and integer indexing, so order is the sampler's pure function."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


@runtime_checkable
class DataSource(Protocol):
    """Raw data made ready for training: text shards, a Zarr datacube of imagery, chips.

    Optional: ``has_split(split) -> bool``, false for a split the source does not serve (``val`` with
    ``val_fraction = 0``); training then skips validation and ``run`` its evaluators, with a note.
    """

    def prepare(self) -> None:
        """Materialise what the source needs (shards, a datacube); idempotent and resumable."""

    def dataset(self, split: str) -> SampleDataset:
        """Samples of one split (``"train"`` or ``"val"``)."""


@runtime_checkable
class Tokenizer(Protocol):
    """Owns both halves of tokenization: data-side ``encode`` and model-side ``embedding``."""

    #: ``"discrete"`` (ids into a vocabulary) or ``"continuous"`` (patch vectors).
    tokens: TokenType

    def encode(self, sample: Any) -> Any:
        """Turn one raw sample (text, an image chip) into tokens."""

    def embedding(self, embed_dim: int) -> Any:
        """A fresh ``nn.Module`` mapping tokens to ``(B, T, embed_dim)`` vectors."""


@runtime_checkable
class PositionalEncoder(Protocol):
    """Positions as an ``nn.Module``; ``mode`` says where it acts.

    Positions are 1-D ids ``(T,)`` / ``(B, T)`` or N-d coordinates ``(T, grid)`` / ``(B, T, grid)``;
    ``None`` means the encoder's default (``0..T-1``, a patch grid). The math lives in ``registry_core.nn``.

    - ``additive``: ``forward(x, positions) -> x + P`` on the embeddings, before the blocks (and before
      any token dropping, so each token keeps its own position);
    - ``rotary``: ``rotate(q, k, positions) -> (q, k)`` inside attention, ``(B, H, T, head_dim)``;
    - ``attention_bias``: ``bias(q_positions, k_positions) -> (heads, q, k)``, or ``(B, heads, q, k)`` for
      per-sample positions, added to attention scores; with a KV cache the queries are the new tokens'
      positions and the keys every cached token's, then the new ones.
    """

    mode: PositionMode
    #: Dimensions of the position grid: 1 (sequence), 2 (image), 3 (time x image).
    grid: int


@runtime_checkable
class Backbone(Protocol):
    """A stack of transformer blocks: ``forward(x, positional, positions=None) -> (B, T, D)``.

    One that ``supports_masking`` (``registry_core.nn.Transformer``) also takes ``keep`` (a ``(B, T)``
    padding mask) and ``keep_index`` (``(B, T_keep)`` indices): then only the kept tokens enter the
    blocks and it returns ``(B, T_keep, D)``, so an MAE encoder step costs about the kept fraction.
    """

    embed_dim: int
    causal: bool

    def __call__(self, x: Any, positional: Any = None, positions: Any = None) -> Any: ...


#: The checkpoint group each part of a model belongs to: what a ``Weights.fills`` entry names.
PART_GROUPS: Final[dict[str, str]] = {
    "embed": "encoder",
    "positional": "encoder",
    "backbone": "encoder",
    "objective": "decoder",
    "head": "head",
}


@dataclass
class ModelParts:
    """The whole built model, part by part: what objectives, heads, weights and evaluators work with.

    ``objective`` holds the objective's own modules (an LM head, an MAE decoder and mask token) and
    ``head`` a finetuning head; either may be None. A part's tensors are named ``<part>.<key of its
    state dict>`` (``backbone.blocks.0.ln1.weight``), the names of the pipeline's ``model.safetensors``.
    """

    embed: Any
    positional: Any
    backbone: Any
    objective: Any = None
    head: Any = None

    def named(self) -> dict[str, Any]:
        """Part name -> part, in model order, for the parts that are set."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@runtime_checkable
class Objective(Protocol):
    """Head + loss: ``objective(parts, batch) -> (loss, metrics)``; an ``nn.Module``.

    Optional attributes the trainer reads: ``count_metrics`` (names of metrics that count things, e.g.
    ``("tokens",)``: summed over micro-batches, ranks and a validation pass, logged as integers; other
    metrics are averaged) and ``loss_weight`` (the metric the loss is a mean over, e.g. its tokens: training
    weighs each micro-batch's loss and gradient by it across accumulation and ranks, and validation each
    batch's loss, so both are the mean over the whole batch or split, as one big batch would give).
    """

    def bind(self, parts: ModelParts) -> None:
        """Create or tie parameters that depend on the other parts (e.g. a tied LM head)."""

    def __call__(self, parts: ModelParts, batch: Any) -> tuple[Any, Mapping[str, float]]: ...


@runtime_checkable
class Head(Protocol):
    """A finetuning head over backbone features: ``head(features) -> outputs``.

    A head with ``bind(parts)`` is bound after the objective, with the whole model (to size itself from
    the backbone or reach the encoder's features).
    """

    def __call__(self, features: Any) -> Any: ...


@runtime_checkable
class Evaluator(Protocol):
    """Scores a built pipeline on one split: ``evaluate(pipeline, split) -> {metric: value}``."""

    def evaluate(self, pipeline: Any, split: str = "val") -> Mapping[str, float]: ...


@runtime_checkable
class Weights(Protocol):
    """Pretrained weights kept as data: local files plus metadata (band order, mean/std, sizes)."""

    meta: Mapping[str, Any]
    #: Which groups of :data:`PART_GROUPS` a checkpoint fills: ``("encoder",)``, ``("encoder", "decoder")``,
    #: ``("encoder", "decoder", "head")``; every tensor of those parts must come from the checkpoint.
    fills: tuple[str, ...]

    def files(self) -> Sequence[Any]:
        """Local files used (their sha256 goes into the pipeline lock)."""

    def load_into(self, parts: ModelParts) -> None:
        """Copy the weights into the whole freshly built model (see ``registry_core.nn.load_parts``)."""


@runtime_checkable
class Recipe(Protocol):
    """A named, complete pipeline config (the same form as a pipeline TOML file)."""

    def config(self) -> Mapping[str, Any]: ...
