"""Config schemas and specs of the 1D positional encoders (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from registry_core import ComponentSpec, option
from registry_core.choices import ROTARY_CONVENTIONS, PositionMode

#: Used when neither the user nor composition set ``max_positions``.
DEFAULT_MAX_POSITIONS: Final = 1024

_EMBED_DIM_HELP = "Model width; None: wired from the backbone's embed_dim when composed."
_HEADS_HELP = "Attention heads; None: wired from the backbone's heads when composed."
_MAX_HELP = (
    f"Longest sequence; None: wired from the backbone's max_positions when composed, else {DEFAULT_MAX_POSITIONS}."
)


@dataclass
class SinusoidalConfig:
    """Fixed sin/cos positions (Vaswani et al. 2017) added to the embeddings."""

    embed_dim: int | None = option(None, help=_EMBED_DIM_HELP, min=2, wired="embed_dim")
    max_positions: int | None = option(None, help=_MAX_HELP, min=1, wired="max_positions")
    base: float = option(10000.0, help="Wavelength base: wavelengths run from 2π to 2π·base.", min=2.0)


@dataclass
class LearnedConfig:
    """A trained table of one vector per position (GPT-2's ``wpe``) added to the embeddings."""

    embed_dim: int | None = option(None, help=_EMBED_DIM_HELP, min=1, wired="embed_dim")
    max_positions: int | None = option(None, help=_MAX_HELP, min=1, wired="max_positions")
    init_std: float = option(0.02, help="Standard deviation of the normal initialisation of the table.", min=0.0)


@dataclass
class RopeConfig:
    """Rotary position embedding: queries and keys rotated by position inside attention (Su et al. 2021)."""

    embed_dim: int | None = option(None, help=_EMBED_DIM_HELP, min=2, wired="embed_dim")
    heads: int | None = option(None, help=_HEADS_HELP, min=1, wired="heads")
    max_positions: int | None = option(None, help=_MAX_HELP, min=1, wired="max_positions")
    base: float = option(10000.0, help="Frequency base θ: pair i turns by position·θ^(-2i/head_dim).", min=2.0)
    convention: str = option(
        "rotate-half",
        help="How dimensions pair up: 'rotate-half' (GPT-NeoX/LLaMA: i with i+head_dim/2) or "
        "'interleaved' (GPT-J / the paper: 2i with 2i+1).",
        choices=ROTARY_CONVENTIONS,
    )


@dataclass
class AlibiConfig:
    """ALiBi: a per-head linear distance penalty added to attention scores (Press et al. 2022)."""

    heads: int | None = option(None, help=_HEADS_HELP, min=1, wired="heads")
    max_positions: int | None = option(None, help=_MAX_HELP, min=1, wired="max_positions")


def _provides(mode: PositionMode) -> dict[str, object]:
    return {"position_mode": mode, "grid": 1, "max_positions": None}


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="positional_encoder",
        name="sinusoidal",
        target="registry_llm.positions.sinusoidal:build",
        summary="Fixed 1D sin/cos positions added to the token embeddings.",
        modality="text",
        tags=("1d", "additive"),
        config=SinusoidalConfig,
        provides=_provides("additive"),
        requires={"embed_dim": None},
    ),
    ComponentSpec(
        kind="positional_encoder",
        name="learned",
        target="registry_llm.positions.learned:build",
        summary="Learned 1D position table added to the token embeddings (GPT-2 style).",
        modality="text",
        tags=("1d", "additive"),
        config=LearnedConfig,
        provides=_provides("additive"),
        requires={"embed_dim": None},
    ),
    ComponentSpec(
        kind="positional_encoder",
        name="rope",
        target="registry_llm.positions.rope:build",
        summary="Rotary position embedding applied to queries and keys inside attention.",
        modality="text",
        tags=("1d", "rotary"),
        config=RopeConfig,
        provides=_provides("rotary"),
        requires={"embed_dim": None, "heads": None},
    ),
    ComponentSpec(
        kind="positional_encoder",
        name="alibi",
        target="registry_llm.positions.alibi:build",
        summary="ALiBi linear distance biases added to attention scores (any head count).",
        modality="text",
        tags=("1d", "attention-bias"),
        config=AlibiConfig,
        provides=_provides("attention_bias"),
        requires={"heads": None},
    ),
]
