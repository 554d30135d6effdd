"""Config schemas and specs of the language-model objectives (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, option

_EMBED_HELP = "Model width; None: wired from the backbone's embed_dim when composed."
_VOCAB_HELP = (
    "Real vocabulary size (logits beyond it are never produced); None: wired from the tokenizer, "
    "else the bound embedding's row count."
)


@dataclass
class NextTokenConfig:
    """Shifted cross-entropy of a causal LM, its head tied to the token embedding."""

    embed_dim: int | None = option(None, help=_EMBED_HELP, min=1, wired="embed_dim")
    vocab_size: int | None = option(None, help=_VOCAB_HELP, min=1, wired="vocab_size")
    pad_id: int | None = option(
        None, help="Target id ignored by the loss besides -100 (padding); None: wired from the tokenizer, or none.",
        min=0, wired="pad_id",
    )
    tie_weights: bool = option(True, help="Share the LM head with the token embedding table (GPT-2 style).")


@dataclass
class MaskedLMConfig:
    """BERT's masked-token objective: pick ``mask_prob`` of the tokens, replace 80/10/10, predict them."""

    embed_dim: int | None = option(None, help=_EMBED_HELP, min=1, wired="embed_dim")
    vocab_size: int | None = option(None, help=_VOCAB_HELP, min=1, wired="vocab_size")
    mask_id: int | None = option(
        None, help="Id of the mask token; None: wired from the tokenizer (its <|mask|>). Required to run.",
        min=0, wired="mask_id",
    )
    pad_id: int | None = option(
        None, help="Id of padding, never chosen for prediction; None: wired from the tokenizer, or none.",
        min=0, wired="pad_id",
    )
    mask_prob: float = option(0.15, help="Share of (non-pad) tokens chosen for prediction.", min=0.0, max=1.0)
    replace_mask: float = option(0.8, help="Of the chosen tokens, share replaced by mask_id.", min=0.0, max=1.0)
    replace_random: float = option(
        0.1, help="Of the chosen tokens, share replaced by a random id (the rest stay as they are).", min=0.0, max=1.0
    )
    tie_weights: bool = option(True, help="Share the prediction head with the token embedding table.")
    head: str = option("linear", help="prediction head: 'linear' (the output matrix alone) or 'bert' (BERT's: a "
                       "dense layer, GELU and LayerNorm before the output matrix, and an output bias)",
                       choices=("linear", "bert"))
    head_eps: float = option(1e-12, help="LayerNorm epsilon of the 'bert' head (BERT: 1e-12)", min=0.0)

    def __post_init__(self) -> None:
        if self.replace_mask + self.replace_random > 1.0:
            raise ValueError(
                f"replace_mask + replace_random must be <= 1, got {self.replace_mask} + {self.replace_random}"
            )


@dataclass
class ClassifyConfig:
    """Supervised finetuning of a text backbone through a ``[head]``: frozen, full (with layer-wise decay) or LoRA."""

    num_classes: int | None = option(None, help="classes; None: wired from the data source", min=1, wired="num_classes")
    pad_id: int | None = option(None, help="padding id (its positions are masked out); None: wired from the tokenizer",
                                min=0, wired="pad_id")
    train: str = option("head", help="what trains: 'head' (the backbone frozen), 'full' (everything, with "
                        "layer_decay), 'lora' (low-rank adapters on lora_targets, and the head)",
                        choices=("head", "full", "lora"))
    layer_decay: float = option(1.0, help="with train='full': block i of L trains at lr * layer_decay^(L - i), the "
                                "embeddings at lr * layer_decay^(L + 1)", min=0.0, max=1.0)
    lora_rank: int = option(8, help="with train='lora': the adapters' rank r (at least 1, at most a layer's width)")
    lora_alpha: float = option(16.0, help="with train='lora': the update is scaled by alpha / r", min=0.0)
    lora_dropout: float = option(0.0, help="with train='lora': dropout on the adapters' input", min=0.0, max=0.99)
    lora_targets: list[str] = option(["attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"], help="with train='lora': the "
                                     "linear layers to adapt, by name or name suffix inside each block")
    label_smoothing: float = option(0.0, help="cross-entropy label smoothing", min=0.0, max=0.99)

    def __post_init__(self) -> None:
        if not self.layer_decay > 0:
            raise ValueError(f"layer_decay must be in (0, 1], got {self.layer_decay}")
        if self.train == "lora" and not self.lora_targets:
            raise ValueError("train='lora' needs lora_targets (e.g. ['attn.qkv', 'mlp.fc'])")


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="objective",
        name="next-token",
        target="registry_llm.objectives.next_token:build",
        summary="Next-token cross-entropy (causal LM) with an embedding-tied head; ignores -100 and pad.",
        modality="text",
        tags=("pretraining", "causal-lm"),
        config=NextTokenConfig,
        requires={"causal": True, "tokens": "discrete", "embed_dim": None, "vocab_size": None},
    ),
    ComponentSpec(
        kind="objective",
        name="masked-lm",
        target="registry_llm.objectives.masked_lm:build",
        summary="Masked-token prediction (BERT: 15% chosen, 80/10/10 mask/random/keep).",
        modality="text",
        tags=("pretraining", "masked-lm"),
        config=MaskedLMConfig,
        requires={"causal": False, "tokens": "discrete", "embed_dim": None, "vocab_size": None},
    ),
    ComponentSpec(
        kind="objective",
        name="instruct",
        target="registry_llm.objectives.instruct:build",
        summary="Instruction tuning: next-token cross-entropy on response tokens only, packed pairs kept apart "
        "(per-pair positions, attention inside each pair).",
        modality="text",
        tags=("finetuning", "instruction-tuning", "sft", "causal-lm"),
        config=NextTokenConfig,
        requires={"causal": True, "tokens": "discrete", "embed_dim": None, "vocab_size": None},
    ),
    ComponentSpec(
        kind="objective",
        name="classify",
        target="registry_llm.objectives.classify:build",
        summary="Text or token classification through a [head]: cross-entropy; the backbone frozen, fully finetuned "
        "with layer-wise decay, or adapted with LoRA (exported in peft's format).",
        modality="text",
        tags=("finetuning", "classification", "lora"),
        config=ClassifyConfig,
        requires={"tokens": "discrete"},
    ),
]
