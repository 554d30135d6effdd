"""The one transformer stack of the project: pre-LN blocks and a final LayerNorm (or post-LN blocks after an
input LayerNorm, BERT's layout), any position scheme, optional token-type embeddings.

Decoders (``causal=True``) and encoders (``causal=False``) of both stacks are this class. It takes a
positional encoder by its ``mode``: ``additive`` ones are added to the input, ``rotary`` ones rotate
queries and keys in every layer, ``attention_bias`` ones are asked for ``bias(q_positions, k_positions)``,
which becomes the SDPA mask. It knows nothing of text or images: the input is ``(B, T, D)`` vectors,
``positions`` whatever the encoder understands (1-D ids ``(T,)``/``(B, T)`` or ``(…, T, grid)``
coordinates), ``keep`` an optional ``(B, T)`` mask of real tokens (padding), and ``keep_index`` an
optional ``(B, T_keep)`` choice of tokens: only those enter the blocks (MAE's token dropping), so
dropped tokens cost nothing. Learned prefix tokens (cls, registers) are prepended after both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import torch
from torch import nn
from torch.nn import functional as F

from registry_core.choices import POSITION_MODES
from registry_core.nn.attention import Rotary
from registry_core.nn.block import Block
from registry_core.nn.gather import check_token_index, gather_tokens
from registry_core.nn.kv_cache import KVCache
from registry_core.nn.masks import attention_mask
from registry_core.nn.positions import token_axis, token_positions

__all__ = ["PREFIX_POSITIONS", "Transformer", "init_weights"]

#: How prefix tokens are placed: no position at all, or one learned vector each (added to the token).
PREFIX_POSITIONS: Final = ("none", "learned")


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Normal(0, std) weights and zero biases for linear and embedding layers (a small, denormal-free init)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=std)


def _check_options(embed_dim: int, heads: int, prefix_tokens: int, prefix_positions: str) -> None:
    if embed_dim % heads:
        raise ValueError(f"embed_dim {embed_dim} is not divisible by heads {heads}")
    if prefix_tokens < 0:
        raise ValueError(f"prefix_tokens must be >= 0, got {prefix_tokens}")
    if prefix_positions not in PREFIX_POSITIONS:
        raise ValueError(f"prefix_positions must be one of {', '.join(PREFIX_POSITIONS)}, got {prefix_positions!r}")


def _encoder_name(positional: Any) -> str:
    return str(getattr(positional, "name", type(positional).__name__))


class Transformer(nn.Module):
    """A stack of ``depth`` pre-LN blocks: ``(B, T, D) -> (B, P + T, D)``, final LayerNorm applied.

    ``norm="post"``: post-LN blocks, and the LayerNorm (``ln_f``) normalises the input instead, after positions and
    token types are added (BERT's embedding LayerNorm); the blocks' output is already normalised. With
    ``type_vocab_size`` > 0 a token-type embedding (BERT's segment A / B) is added to the input: ``token_types``
    ``(B, T)`` ids, type 0 when not given.

    ``P = prefix_tokens`` learned tokens (0 by default) come first in the output. They are added after
    the positions and the gather, so they are never dropped; ``prefix_positions="learned"`` gives each a
    learned vector, ``"none"`` no position. Inside attention they get no rotation and a zero bias: to
    rotary and bias encoders they are position-free, and the other tokens keep their own positions.
    """

    prefix: nn.Parameter
    prefix_pos: nn.Parameter

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        heads: int,
        *,
        causal: bool,
        mlp_ratio: float = 4.0,
        bias: bool = True,
        dropout: float = 0.0,
        activation: str = "gelu",
        max_positions: int | None = None,
        eps: float = 1e-5,
        init_std: float = 0.02,
        prefix_tokens: int = 0,
        prefix_positions: str = "none",
        norm: str = "pre",
        type_vocab_size: int = 0,
    ) -> None:
        super().__init__()
        _check_options(embed_dim, heads, prefix_tokens, prefix_positions)
        self.embed_dim = embed_dim
        self.depth = depth
        self.heads = heads
        self.head_dim = embed_dim // heads
        self.causal = causal
        self.max_positions = max_positions
        self.activation = activation
        self.eps = eps
        #: Learned tokens (cls, registers) put before the input tokens; the output starts with them.
        self.num_prefix_tokens = prefix_tokens
        self.prefix_positions = prefix_positions
        #: "pre" or "post": where the blocks' LayerNorms sit, and whether ``ln_f`` ends the stack or starts it.
        self.norm = norm
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(embed_dim, heads, mlp_ratio=mlp_ratio, bias=bias, dropout=dropout, activation=activation, eps=eps,
                  norm=norm)
            for _ in range(depth)
        )
        self.ln_f = nn.LayerNorm(embed_dim, eps=eps, bias=bias)
        self.type_vocab_size = type_vocab_size
        self.token_type: nn.Embedding | None = nn.Embedding(type_vocab_size, embed_dim) if type_vocab_size else None
        self.apply(lambda m: init_weights(m, init_std))
        # GPT-2's scaled residual init: each residual branch's output projection gets std / sqrt(2 * depth),
        # so the residual stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.proj.weight")):
                nn.init.normal_(p, mean=0.0, std=init_std / math.sqrt(2 * depth))
        if prefix_tokens:
            # Made last and only when asked for, so a stack without prefix tokens draws the same random numbers.
            self.prefix = nn.Parameter(torch.empty(1, prefix_tokens, embed_dim))
            nn.init.normal_(self.prefix, mean=0.0, std=init_std)
            if prefix_positions == "learned":
                self.prefix_pos = nn.Parameter(torch.empty(1, prefix_tokens, embed_dim))
                nn.init.normal_(self.prefix_pos, mean=0.0, std=init_std)

    def num_parameters(self) -> int:
        """Parameters of the stack itself (embeddings and heads belong to other parts)."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len: int, extra_params: int = 0) -> int:
        """Training FLOPs per token: ``6 N`` for the matmuls (forward + backward) plus attention scores.

        ``extra_params`` adds parameters used once per token outside the stack (the LM head). The
        attention term is ``12 * depth * D * seq_len`` (PaLM's appendix B count, causal masking ignored).
        """
        n = self.num_parameters() + extra_params
        return 6 * n + 12 * self.depth * self.embed_dim * seq_len

    def new_cache(
        self, batch: int, capacity: int, *, dtype: torch.dtype | None = None, device: Any = None
    ) -> KVCache:
        """A preallocated KV cache sized for this stack."""
        ref = self.ln_f.weight
        return KVCache(
            self.depth,
            batch,
            self.heads,
            capacity,
            self.head_dim,
            dtype=dtype or ref.dtype,
            device=device if device is not None else ref.device,
        )

    def forward(
        self,
        x: torch.Tensor,
        positional: Any = None,
        positions: torch.Tensor | None = None,
        *,
        keep: torch.Tensor | None = None,
        keep_index: torch.Tensor | None = None,
        cache: KVCache | None = None,
        taps: Sequence[int] = (),
        tapped: list[torch.Tensor] | None = None,
        token_types: torch.Tensor | None = None,
        segments: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the stack on ``x`` ``(B, T, D)``; with ``cache``, ``x`` continues the cached tokens.

        Returns ``(B, P + T, D)``, or ``(B, P + T_keep, D)`` in ``keep_index`` order when given: additive
        positions are added to all ``T`` tokens first, then the kept tokens (and their positions, for
        rotary and bias encoders) are gathered and only they run through the blocks.

        ``taps`` (block indices, negative from the end) appends the final-normed output of each of those
        blocks to ``tapped``, in ``taps`` order: the multi-level features of dense-prediction heads.
        ``segments`` ``(B, T)`` numbers packed examples: attention stays inside each (give their positions too).
        """
        if segments is not None and (cache is not None or keep_index is not None or self.num_prefix_tokens):
            raise ValueError("segments (packed examples) cannot be combined with a KV cache, keep_index or prefix tokens")
        t = x.shape[1]
        mode = self._check_input(x, positional, cache, keep_index is not None)
        offset = cache.length if cache is not None else 0
        grid = int(getattr(positional, "grid", 1))
        if positions is None and offset > 0:
            # Cached decoding continues at ``offset``. Made on the host: encoders read their range without
            # a GPU sync, and indexing a device table with host indices is allowed. Without a cache,
            # positions stay None and each encoder uses its own default (0..T-1 in 1D, a patch grid in 2D).
            positions = torch.arange(offset, offset + t)
        x = self._input(x, positional if mode == "additive" else None, positions, token_types)
        if keep_index is not None:  # (B, T_keep, D): dropped tokens go no further
            x, keep, positions = self._gather_kept(x, keep, keep_index, positional, positions, mode, grid)
            t = x.shape[1]
        rotary = self._rotary(positional, positions) if mode == "rotary" else None
        bias = self._bias(positional, positions, grid, offset, t, cache) if mode == "attention_bias" else None
        if self.num_prefix_tokens:
            x, keep, bias = self._prepend(x, keep, bias)
        q_len = self.num_prefix_tokens + t
        # A float mask must match the queries' dtype, which autocast makes lower than the residual stream's.
        dev = x.device.type
        mask_dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
        mask, is_causal = attention_mask(
            q_len, offset + q_len, causal=self.causal, bias=bias, keep=keep, segments=segments, dtype=mask_dtype,
            device=x.device,
        )
        x = self.drop(x)
        wanted = self._tap_order(taps, tapped)
        outputs: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks):
            x = block(x, attn_mask=mask, is_causal=is_causal, rotary=rotary, cache=cache, layer=i)
            if i in wanted:
                outputs[i] = x
        final = self.ln_f if self.norm == "pre" else nn.Identity()
        if tapped is not None:
            tapped.extend(final(outputs[i]) for i in wanted)
        if cache is not None:
            cache.advance(t)
        out: torch.Tensor = final(x)
        return out

    def _input(self, x: torch.Tensor, additive: Any, positions: Any, token_types: torch.Tensor | None) -> torch.Tensor:
        """The blocks' input: ``x`` plus additive positions and token types, normalised first in a post-LN stack."""
        if additive is not None:
            x = additive(x, positions)
        if self.token_type is not None:
            x = x + self._types(token_types, x)
        elif token_types is not None:
            raise ValueError("token_types were given, but this stack has no token-type embedding (type_vocab_size=0)")
        if self.norm == "post":
            x = self.ln_f(x)  # BERT's embedding LayerNorm: the post-LN blocks normalise their own outputs
        return x

    def _types(self, token_types: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        """The token-type vectors to add to ``x`` ``(B, T, D)``: of ``token_types`` ``(B, T)``, else of type 0."""
        assert self.token_type is not None
        if token_types is None:
            return self.token_type.weight[0].to(x.dtype)
        if tuple(token_types.shape) != tuple(x.shape[:2]):
            raise ValueError(f"token_types must be (B, T) = {tuple(x.shape[:2])}, got {tuple(token_types.shape)}")
        out: torch.Tensor = self.token_type(token_types)
        return out

    def _gather_kept(self, x: torch.Tensor, keep: torch.Tensor | None, keep_index: torch.Tensor, positional: Any,
                     positions: torch.Tensor | None, mode: str | None,
                     grid: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The kept tokens of ``x`` in ``keep_index`` order, with their keep mask and (rotary, bias) positions."""
        b, t = x.shape[0], x.shape[1]
        index = check_token_index(keep_index, b, t)
        x = gather_tokens(x, index)
        if keep is not None:
            if tuple(keep.shape) != (b, t):
                raise ValueError(f"keep mask must be (B, T) = ({b}, {t}), got {tuple(keep.shape)}")
            keep = gather_tokens(keep, index)
        if mode in ("rotary", "attention_bias"):
            positions = self._gather_positions(positional, positions, index, t, grid)
        return x, keep, positions

    def _check_input(self, x: torch.Tensor, positional: Any, cache: KVCache | None, gathers: bool) -> str | None:
        """The positional encoder's mode, once ``x`` (after the cached tokens) is one the stack can run."""
        t, d = x.shape[1], x.shape[2]
        if d != self.embed_dim:
            raise ValueError(f"input has width {d}, the backbone expects embed_dim {self.embed_dim}")
        offset = cache.length if cache is not None else 0
        if cache is not None and (gathers or self.num_prefix_tokens):
            raise ValueError("a KV cache cannot be combined with keep_index or prefix tokens; decode without them")
        if self.max_positions is not None and offset + t > self.max_positions:
            raise ValueError(f"sequence of {offset + t} tokens is longer than max_positions {self.max_positions}")
        mode = getattr(positional, "mode", None) if positional is not None else None
        if mode is not None and mode not in POSITION_MODES:
            raise ValueError(f"positional encoder mode {mode!r} is not one of {', '.join(POSITION_MODES)}")
        return mode

    def _tap_order(self, taps: Sequence[int], tapped: list[torch.Tensor] | None) -> list[int]:
        """``taps`` as block indices in ``[0, depth)``, checked; ``tapped`` must be given with them."""
        if taps and tapped is None:
            raise ValueError("taps needs a list to append the tapped block outputs to (tapped=[])")
        out = []
        for t in taps:
            i = t + self.depth if t < 0 else t
            if not 0 <= i < self.depth:
                raise ValueError(f"tap {t} is not a block of this {self.depth}-block stack")
            out.append(i)
        return out

    def _gather_positions(
        self, positional: Any, positions: Any, index: torch.Tensor, t: int, grid: int
    ) -> Any:
        """The kept tokens' positions ``(B, T_keep)`` or ``(B, T_keep, grid)``, for rotary and bias encoders.

        An encoder with ``gather_positions(positions, index)`` picks them itself: its positions may be more
        than a tensor (imagery's placement of patches, with chip metadata).
        """
        gather = getattr(positional, "gather_positions", None)
        if callable(gather):
            return gather(positions, index)
        if positions is not None and not isinstance(positions, torch.Tensor):
            raise ValueError(
                f"positional encoder {_encoder_name(positional)!r}: keep_index needs its positions as a tensor, got "
                f"{type(positions).__name__}; an encoder with other positions gathers them itself "
                "(gather_positions(positions, index))"
            )
        if positions is None:
            if grid != 1:
                raise ValueError(
                    f"positional encoder {_encoder_name(positional)!r} has a {grid}-D grid: keep_index needs its "
                    "positions, e.g. grid_positions((h, w)) for an h x w patch grid"
                )
            positions = torch.arange(t, device=index.device)
        pos = token_positions(_encoder_name(positional), positions, grid, t)
        if pos.dim() == (1 if grid == 1 else 2):
            pos = pos.expand(index.shape[0], *pos.shape)  # shared by the batch -> one row per sample
        return gather_tokens(pos, index)

    def _rotary(self, positional: Any, positions: torch.Tensor | None) -> Rotary:
        """``(q, k) -> (q, k)`` rotated at ``positions``; prefix tokens (first in the sequence) are not rotated."""
        rotate = positional.rotate
        bound = positions
        p = self.num_prefix_tokens

        def rotary(q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if p:  # (B, H, P + T, hd): rotate the last T only
                qr, kr = rotate(q[:, :, p:], k[:, :, p:], bound)
                return torch.cat((q[:, :, :p], qr), dim=2), torch.cat((k[:, :, :p], kr), dim=2)
            out: tuple[torch.Tensor, torch.Tensor] = rotate(q, k, bound)
            return out

        return rotary

    def _bias(
        self, positional: Any, positions: torch.Tensor | None, grid: int, offset: int, t: int, cache: KVCache | None
    ) -> torch.Tensor:
        """``positional.bias(q_positions, k_positions)``: the queries are this pass's tokens, the keys add the cached ones.

        The cache records the keys' positions, so explicit positions stay right across decoding steps.
        """
        name = _encoder_name(positional)
        q_pos = positions if positions is not None else torch.arange(offset, offset + t)  # host, like the offset
        q_pos = token_positions(name, q_pos, grid, t)
        k_pos = q_pos
        if cache is not None:
            if offset:
                old = cache.positions
                if old is None:
                    if grid != 1:
                        raise ValueError(f"positional encoder {name!r}: the KV cache holds no positions of its keys")
                    old = torch.arange(offset)
                old = old.narrow(token_axis(grid), 0, offset).to(q_pos.device)
                new = q_pos
                if old.dim() < new.dim():
                    old = old.expand(new.shape[0], *old.shape)
                elif new.dim() < old.dim():
                    new = new.expand(old.shape[0], *new.shape)
                k_pos = torch.cat((old, new), dim=token_axis(grid))
            cache.positions = k_pos
        bias: torch.Tensor = positional.bias(q_pos, k_pos)
        return bias

    def _prepend(
        self, x: torch.Tensor, keep: torch.Tensor | None, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Prefix tokens before ``x`` ``(B, T, D)``, always kept, with a zero attention bias to and from them."""
        b, p = x.shape[0], self.num_prefix_tokens
        prefix = self.prefix + self.prefix_pos if self.prefix_positions == "learned" else self.prefix
        x = torch.cat((prefix.to(x.dtype).expand(b, -1, -1), x), dim=1)  # (B, P + T, D)
        if keep is not None:
            keep = torch.cat((torch.ones(b, p, dtype=torch.bool, device=keep.device), keep.bool()), dim=1)
        if bias is not None:
            bias = F.pad(bias, (p, 0, p, 0))  # (…, H, P + q, P + k), zeros for prefix rows and columns
        return x, keep, bias
