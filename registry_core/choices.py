"""Choices declared once: position modes, rotary conventions, MLP activations and the transformer options.

Torch-free, so spec modules (which must never import torch) and ``registry_core.nn`` read the same
lists; each tuple is derived from its ``Literal``, so type checkers see the very same names. Both bundled
backbones' configs extend :class:`TransformerOptions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, get_args

from registry_core._spec import option

if TYPE_CHECKING:
    from registry_core.hub import Pulled

__all__ = [
    "ACTIVATIONS",
    "POSITION_MODES",
    "ROTARY_CONVENTIONS",
    "Activation",
    "HubSource",
    "PositionMode",
    "RotaryConvention",
    "TransformerOptions",
]

#: Where a positional encoder acts: added to the embeddings, rotating queries and keys, or as a score bias.
PositionMode = Literal["additive", "rotary", "attention_bias"]
POSITION_MODES: Final[tuple[PositionMode, ...]] = get_args(PositionMode)

#: How rotary embedding pairs dimensions: ``i`` with ``i + d/2`` (GPT-NeoX, LLaMA) or ``2i`` with ``2i+1`` (GPT-J).
RotaryConvention = Literal["rotate-half", "interleaved"]
ROTARY_CONVENTIONS: Final[tuple[RotaryConvention, ...]] = get_args(RotaryConvention)

#: MLP activations of ``registry_core.nn.MLP``; ``gelu-tanh`` is GPT-2's ``gelu_new``.
Activation = Literal["gelu", "gelu-tanh", "relu", "silu"]
ACTIVATIONS: Final[tuple[Activation, ...]] = get_args(Activation)


@dataclass
class TransformerOptions:
    """Width, depth, heads, dropout, MLP, activation, LayerNorm epsilon and place, and init of a transformer.

    A backbone's config extends it (``class GPTConfig(TransformerOptions)``), adds its own options after these
    and may redeclare one to change its default (the imagery ViT wires ``layer_norm_eps`` from its weights).
    """

    embed_dim: int = option(768, help="model width D (divisible by heads)", min=1)
    depth: int = option(12, help="number of transformer blocks", min=1)
    heads: int = option(12, help="attention heads per block", min=1)
    dropout: float = option(0.0, help="dropout on embeddings, attention weights and residual branches",
                            min=0.0, max=1.0)
    mlp_ratio: float = option(4.0, help="MLP hidden width as a multiple of embed_dim", min=0.0)
    activation: str = option("gelu", help=f"MLP activation, one of {', '.join(map(repr, ACTIVATIONS))}: 'gelu' is "
                             "the exact one, 'gelu-tanh' GPT-2's gelu_new", choices=ACTIVATIONS)
    layer_norm_eps: float | None = option(1e-5, help="LayerNorm epsilon", min=0.0)
    init_std: float = option(0.02, help="std of the normal init of linear layers (and a cls token); each residual "
                             "branch's output projection gets std / sqrt(2 depth)", min=0.0)
    norm: str = option("pre", help="where LayerNorms sit: 'pre' (before each branch, a final LayerNorm: GPT-2, ViT) "
                       "or 'post' (after each residual sum, a LayerNorm on the input: BERT, the original "
                       "transformer)", choices=("pre", "post"))

    def __post_init__(self) -> None:
        if self.embed_dim % self.heads:
            raise ValueError(f"embed_dim {self.embed_dim} must be divisible by heads {self.heads}")


@dataclass
class HubSource:
    """Where a loader's files come from when they live on a model hub: a repo, its files, a revision.

    A loader's config extends it (``class PrithviConfig(HubSource)``); a card fills these options. With ``hub``
    set, the loader calls :meth:`pull` when it is built and reads the cached files; else it reads its ``path``.
    """

    hub: str | None = option(None, help="hub repo id 'owner/name' to pull the files from (the hub of HF_ENDPOINT, "
                             "huggingface.co by default); None: read the local `path`")
    files: tuple[str, ...] | None = option(None, help="the repo's files to pull; None: the format's usual files")
    revision: str = option("main", help="branch, tag or commit of the hub repo (the lock records the commit)")
    repo_type: str = option("model", help="'model' or 'dataset' repo", choices=("model", "dataset"))
    sha256: dict[str, str] | None = option(None, help="file -> its published sha256; a pulled file whose hash "
                                           "differs is refused")

    def check_source(self, who: str, has_path: bool, *, required: bool = True, local: str = "path") -> None:
        """ValueError when both a local ``local`` option (``path``) and ``hub`` are given, or (``required``) neither;
        a source that can also train or read a bundled corpus passes ``required=False``."""
        if (has_path and self.hub is not None) or (required and not has_path and self.hub is None):
            raise ValueError(f"option '{local}' or 'hub': {who} reads a local `{local}` or pulls from a `hub` repo; "
                             f"give one of them, not {'both' if has_path else 'neither'}")

    def cached_file(self, default: str) -> Path | None:
        """The first of ``files`` (else ``default``) when huggingface_hub's cache already holds it at ``revision``;
        None without ``hub`` or when not cached. Never touches the network: composition reads sizes from it."""
        if self.hub is None:
            return None
        from registry_core.hub import cached

        return cached(self.hub, (self.files or (default,))[0], revision=self.revision, repo_type=self.repo_type)

    def pull(self, default_files: Sequence[str]) -> Pulled:
        """The files (``files``, else ``default_files``) of ``hub`` at ``revision``, from the cache or the hub."""
        from registry_core.hub import pull

        if self.hub is None:
            raise ValueError("no hub repo to pull from: set `hub`")
        return pull(self.hub, list(self.files or default_files), revision=self.revision, repo_type=self.repo_type,
                    sha256=self.sha256)
