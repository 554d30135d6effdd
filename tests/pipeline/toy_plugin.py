"""A small plugin used by the pipeline tests: light specs here, torch parts in toy_parts.py.

The fixture installs both modules as a throw-away distribution (entry point ``toy``), so the tests go
through real entry-point discovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry_core import ComponentSpec, ModalitySpec, hookimpl, option

P = "rc_toy_parts"


@dataclass
class DataConfig:
    vocab: int = option(16, help="Token ids are below this.", min=2)
    seq_len: int = option(8, help="Tokens per sample.", min=1)
    samples: int = option(64, help="Training samples.", min=1)
    bands: tuple[str, ...] = option((), help="Band names (imagery variants only).")


@dataclass
class TokConfig:
    vocab_size: int = option(16, help="Vocabulary size.", min=2)
    path: Path | None = option(None, help="A vocabulary file (its hash goes into the lock).")
    bands: tuple[str, ...] | None = option(None, help="Bands the tokenizer expects.", wired="bands")
    grid: int = option(1, help="Position grid.", choices=(1, 2, 3))


@dataclass
class PosConfig:
    embed_dim: int | None = option(None, help="Width (wired from the backbone).", wired="embed_dim")
    max_positions: int | None = option(None, help="Longest sequence (wired).", wired="max_positions")


@dataclass
class BackboneConfig:
    embed_dim: int = option(32, help="Width.", min=1)
    max_positions: int = option(64, help="Longest sequence.", min=1)
    hidden: int = option(64, help="MLP width.", min=1)


@dataclass
class ObjConfig:
    embed_dim: int | None = option(None, help="Width (wired).", wired="embed_dim")
    vocab_size: int | None = option(None, help="Vocabulary (wired).", wired="vocab_size")


@dataclass
class WeightsConfig:
    embed_dim: int = option(32, help="Width of the stored weights.")
    bands: tuple[str, ...] = option(("B02", "B03", "B04"), help="Bands the weights were trained on.")


@dataclass
class EvalConfig:
    batches: int = option(2, help="Batches to score.", min=1)


def spec(kind: str, name: str, target: str, config: type | None = None, modality: str = "text", **kw: object) -> ComponentSpec:
    return ComponentSpec(kind, name, f"{P}:{target}", f"Toy {kind} {name}.", modality=modality, config=config,
                         tags=("toy",), **kw)  # type: ignore[arg-type]


SPECS = [
    spec("data_source", "toy-text", "ToyData", DataConfig, provides={"tokens": "discrete", "seq_len": None}),
    spec("data_source", "toy-image", "ToyData", DataConfig, modality="imagery", provides={"bands": None, "tokens": "continuous"}),
    spec("tokenizer", "toy-tok", "ToyTokenizer", TokConfig, provides={"tokens": "discrete", "vocab_size": None, "grid": None}),
    spec("tokenizer", "toy-patch", "ToyTokenizer", TokConfig, modality="imagery",
         provides={"tokens": "continuous", "grid": 2}, requires={"bands": None}),
    spec("positional_encoder", "toy-learned", "ToyPositions", PosConfig, modality="any",
         provides={"position_mode": "additive", "grid": 1}, requires={"embed_dim": None}),
    spec("positional_encoder", "toy-rotary", "ToyPositions", PosConfig, modality="any",
         provides={"position_mode": "rotary", "grid": 1}),
    spec("positional_encoder", "toy-2d", "ToyPositions", PosConfig, modality="any",
         provides={"position_mode": "additive", "grid": 2}),
    spec("backbone", "toy-decoder", "ToyBackbone", BackboneConfig, modality="any",
         provides={"embed_dim": None, "causal": True, "position_modes": ["additive"], "max_positions": None}),
    spec("backbone", "toy-encoder", "ToyBackbone", BackboneConfig, modality="any",
         provides={"embed_dim": None, "causal": False, "position_modes": ["additive", "rotary"]}),
    spec("objective", "toy-next", "ToyNextToken", ObjConfig, modality="any",
         requires={"causal": True, "tokens": "discrete", "embed_dim": None, "vocab_size": None}),
    spec("objective", "toy-mae", "ToyNextToken", ObjConfig, modality="any",
         requires={"causal": False, "supports_masking": True}),
    spec("weights", "toy-weights", "ToyWeights", WeightsConfig, modality="any", provides={"embed_dim": None, "bands": None}),
    spec("evaluator", "toy-loss", "ToyEval", EvalConfig, modality="any"),
]


@hookimpl
def registry_core_components() -> list[ComponentSpec]:
    return SPECS



@hookimpl
def registry_core_modalities() -> list[ModalitySpec]:
    # also declared by registry-llm and registry-gfm: the toy stack works without them
    return [ModalitySpec("text", "Toy text."), ModalitySpec("imagery", "Toy images.")]
