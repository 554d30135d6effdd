"""Cards of OpenAI's GPT-2 checkpoints: the ``hf-gpt2`` loader preset to each ``openai-community`` hub repo, with
what the model expects (no heavy imports, no network)."""

from __future__ import annotations

from registry_core import Card, ComponentSpec
from registry_llm.weights.specs import HF_GPT2_FILES, HFGPT2Config

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


SPECS: list[ComponentSpec] = [gpt2_card(*size) for size in GPT2_SIZES]
