"""Cards of the text stack's named pretrained models: OpenAI's GPT-2 checkpoints (the ``hf-gpt2`` loader preset to
each ``openai-community`` hub repo) and Google's BERT base uncased (``hf-bert``), with what each model expects (no
heavy imports, no network)."""

from __future__ import annotations

from registry_core import Card, ComponentSpec
from registry_llm.tokenizers.specs import BPEConfig, WordPieceConfig
from registry_llm.weights.specs import HF_BERT_FILES, HF_GPT2_FILES, HFBertConfig, HFGPT2Config

#: The four GPT-2 checkpoints OpenAI released, as the hub keeps them: (repo name, width, depth, heads,
#: parameters counted by transformers' GPT2LMHeadModel(config).num_parameters() for the repo's config.json).
GPT2_SIZES = (
    ("gpt2", 768, 12, 12, 124_439_808),
    ("gpt2-medium", 1024, 24, 16, 354_823_168),
    ("gpt2-large", 1280, 36, 20, 774_030_080),
    ("gpt2-xl", 1600, 48, 25, 1_557_611_200),
)


def gpt2_card(name: str, width: int, depth: int, heads: int, params: int) -> ComponentSpec:
    return ComponentSpec(
        kind="weights",
        name=name,
        target="registry_llm.weights.hf_gpt2:build",
        summary=f"OpenAI's GPT-2 ({name}, {params / 1e6:,.0f}M): decoder {width}x{depth}, {heads} heads, 1024 "
        "positions, byte-level BPE of 50,257 tokens.",
        modality="text",
        tags=("gpt2", "huggingface", "safetensors"),
        config=HFGPT2Config,
        requires={"causal": True, "tokens": "discrete", "position_mode": "additive"},
        card=Card(
            repo=f"openai-community/{name}",
            files=HF_GPT2_FILES,
            licence="mit",
            params=params,
            source=f"https://huggingface.co/openai-community/{name}",
            preprocessing={"tokenizer": "byte-level BPE (tokenizer.json; vocab.json + merges.txt)",
                           "vocab_size": 50257, "max_positions": 1024, "embed_dim": width, "depth": depth,
                           "heads": heads, "activation": "gelu-tanh", "layer_norm_eps": 1e-5,
                           "bos_eos": "<|endoftext|>"},
        ),
    )


BERT_BASE_UNCASED = ComponentSpec(
    kind="weights",
    name="bert-base-uncased",
    target="registry_llm.weights.hf_bert:build",
    summary="Google's BERT base, uncased (110M): post-LN encoder 768x12, 12 heads, 512 positions, 2 token types, "
    "WordPiece of 30,522 tokens; MLM and pooler.",
    modality="text",
    tags=("bert", "huggingface", "safetensors"),
    config=HFBertConfig,
    requires={"causal": False, "tokens": "discrete", "position_mode": "additive"},
    card=Card(
        repo="google-bert/bert-base-uncased",
        files=HF_BERT_FILES,
        licence="apache-2.0",
        # transformers' BertForPreTraining(BertConfig()).num_parameters(): the checkpoint holds MLM, NSP and pooler
        params=110_106_428,
        source="https://huggingface.co/google-bert/bert-base-uncased",
        preprocessing={"tokenizer": "WordPiece, lowercased and accents stripped (vocab.txt; tokenizer.json)",
                       "vocab_size": 30522, "special_tokens": "[CLS] [SEP] [PAD] [MASK] [UNK]", "max_positions": 512,
                       "type_vocab_size": 2, "embed_dim": 768, "depth": 12, "heads": 12, "norm": "post",
                       "activation": "gelu", "layer_norm_eps": 1e-12},
    ),
)

#: GPT-2's byte-level BPE (all four sizes share it): the ``bpe`` loader preset to the repo's tokenizer.json, its
#: one special token ``<|endoftext|>`` as beginning and end (GPT-2 has no padding or mask token).
GPT2_TOKENIZER = ComponentSpec(
    kind="tokenizer",
    name="gpt2",
    target="registry_llm.tokenizers.bpe:build_bpe",
    summary="GPT-2's byte-level BPE (50,257 tokens, <|endoftext|>), shared by gpt2 ... gpt2-xl.",
    modality="text",
    tags=("bpe", "gpt2", "huggingface"),
    config=BPEConfig,
    provides={"tokens": "discrete", "vocab_size": None, "grid": 1},
    card=Card(
        repo="openai-community/gpt2",
        files=("tokenizer.json",),
        licence="mit",
        source="https://huggingface.co/openai-community/gpt2",
        preprocessing={"vocab_size": 50257, "special_tokens": "<|endoftext|> (50256): bos and eos"},
        options={"vocab_size": 50257, "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "",
                 "mask_token": ""},
    ),
)

#: BERT base uncased's WordPiece: the ``wordpiece`` loader preset to the repo's vocab.txt (lowercased, accents
#: stripped, [CLS] ... [SEP] added), the ids transformers' BERT tokenizer gives.
BERT_BASE_UNCASED_TOKENIZER = ComponentSpec(
    kind="tokenizer",
    name="bert-base-uncased",
    target="registry_llm.tokenizers.wordpiece:build_wordpiece",
    summary="BERT base uncased's WordPiece (30,522 tokens, lowercased): [CLS] ... [SEP], pairs with token types.",
    modality="text",
    tags=("wordpiece", "bert", "huggingface"),
    config=WordPieceConfig,
    provides={"tokens": "discrete", "vocab_size": None, "grid": 1},
    card=Card(
        repo="google-bert/bert-base-uncased",
        files=("vocab.txt",),
        licence="apache-2.0",
        source="https://huggingface.co/google-bert/bert-base-uncased",
        preprocessing={"vocab_size": 30522, "lowercase": True, "special_tokens": "[PAD] [UNK] [CLS] [SEP] [MASK]"},
        options={"vocab_size": 30522, "lowercase": True},
    ),
)

SPECS: list[ComponentSpec] = [*(gpt2_card(*size) for size in GPT2_SIZES), BERT_BASE_UNCASED, GPT2_TOKENIZER,
                              BERT_BASE_UNCASED_TOKENIZER]
