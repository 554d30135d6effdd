"""Config schemas and specs of the text heads ``sequence-classification`` and ``token-classification`` (no heavy
imports)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, option

#: How a sequence becomes one vector: its last real token, its first token, the mean of its real tokens, or BERT's
#: pooler (the backbone's dense layer and tanh over the first token).
POOLS = ("auto", "last", "first", "mean", "pooler")


@dataclass
class SequenceClassificationConfig:
    """One class per text: a pooled hidden state -> a linear layer (GPT-2's and BERT's classification heads)."""

    num_classes: int | None = option(None, help="classes to predict; None: wired from the data source", min=1,
                                     wired="num_classes")
    embed_dim: int | None = option(None, help="backbone width; None: wired from the backbone", min=1, wired="embed_dim")
    pool: str = option("auto", help="'last': the last non-pad token (a causal model, GPT2ForSequenceClassification); "
                       "'first': the first token ([CLS]); 'mean': the mean of the non-pad tokens; 'pooler': BERT's pooler, "
                       "tanh(dense([CLS])) of a bert backbone built with pooler = true (BertForSequenceClassification); "
                       "'auto': last for a causal backbone, first for a bidirectional one", choices=POOLS)
    bias: bool = option(False, help="a bias on the output layer (GPT-2's `score` has none, BERT's `classifier` has one)")
    dropout: float = option(0.0, help="dropout before the output layer", min=0.0, max=0.99)


@dataclass
class TokenClassificationConfig:
    """A class per token: each hidden state -> a linear layer (BertForTokenClassification's head)."""

    num_classes: int | None = option(None, help="classes to predict; None: wired from the data source", min=1,
                                     wired="num_classes")
    embed_dim: int | None = option(None, help="backbone width; None: wired from the backbone", min=1, wired="embed_dim")
    dropout: float = option(0.0, help="dropout before the output layer", min=0.0, max=0.99)


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="head",
        name="sequence-classification",
        target="registry_llm.heads.sequence:build",
        summary="Text classification: the last real token (causal), [CLS] or the mean of a text's hidden states -> "
        "a linear layer.",
        modality="text",
        tags=("llm", "finetuning", "classification"),
        config=SequenceClassificationConfig,
        provides={"task": "classification"},
        requires={"embed_dim": None},
    ),
    ComponentSpec(
        kind="head",
        name="token-classification",
        target="registry_llm.heads.token:build",
        summary="A class per token (tagging, NER): each hidden state -> a linear layer.",
        modality="text",
        tags=("llm", "finetuning", "token-classification"),
        config=TokenClassificationConfig,
        provides={"task": "token-classification"},
        requires={"embed_dim": None},
    ),
]
