"""Config schemas and specs of the pretrained-weight formats of the text stack (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry_core import ComponentSpec, option
from registry_core.choices import HubSource

#: What a GPT-2 repo holds that the loader reads: the config, the tensors and the tokenizer (both forms).
HF_GPT2_FILES = ("config.json", "model.safetensors", "tokenizer.json", "vocab.json", "merges.txt")


@dataclass
class HFGPT2Config(HubSource):
    """A Hugging Face GPT-2 checkpoint (``config.json`` + ``model.safetensors``): a local folder, or pulled from a
    hub repo (``hub``; the cards ``gpt2`` ... ``gpt2-xl`` set it)."""

    path: Path | None = option(
        None,
        help="Folder with config.json, model.safetensors and the tokenizer files (tokenizer.json, or "
        "vocab.json + merges.txt); None: pulled from `hub`",
    )

    def __post_init__(self) -> None:
        self.check_source("hf-gpt2", self.path is not None)


#: What a BERT repo holds that the loader reads: the config, the tensors and the WordPiece vocabulary.
HF_BERT_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json")


@dataclass
class HFBertConfig(HubSource):
    """A Hugging Face BERT checkpoint (``config.json`` + ``model.safetensors``): a local folder, or pulled from a hub
    repo (``hub``; the card ``bert-base-uncased`` sets it)."""

    path: Path | None = option(
        None, help="Folder with config.json, model.safetensors and the WordPiece vocabulary (vocab.txt or "
        "tokenizer.json); None: pulled from `hub`",
    )
    fills: str = option("encoder+decoder", help="what the checkpoint fills: 'encoder' (embeddings, positions, "
                        "token types, blocks, pooler) or 'encoder+decoder' (also masked-lm's BERT head)",
                        choices=("encoder", "encoder+decoder"))

    def __post_init__(self) -> None:
        self.check_source("hf-bert", self.path is not None)


@dataclass
class TextRunConfig:
    """The token embedding, positions and backbone of a finished text run of ours (e.g. ``runs/gpt-tiny``)."""

    path: str = option(help="the run folder: what `run X.toml --out FOLDER` wrote (pipeline.toml, model.safetensors); "
                       "its embedding, positional encoder and backbone are loaded (use its tokenizer too: "
                       "[tokenizer] path = FOLDER/tokenizer/tokenizer.json)")
    adapters: str | None = option(None, help="a LoRA classifier run of ours (classify, train = 'lora') finetuned from "
                                  "this run: its adapters.safetensors (adapters and head) is loaded on top; None: none")

    def __post_init__(self) -> None:
        from registry_core.atomic import file_inside
        from registry_core.runs import read_finished_run

        self.run_config = read_finished_run(self.path)
        backbone = self.run_config.get("backbone", {})
        if not isinstance(backbone, dict) or str(backbone.get("use", "")).split(":")[-1] not in ("gpt", "bert"):
            raise ValueError(f"run folder {self.path} trained backbone {backbone.get('use') if isinstance(backbone, dict) else None!r}; "
                             "text-run loads a gpt or bert run (e.g. runs/gpt-tiny)")

        if self.adapters is not None and not file_inside(Path(self.adapters), "adapters.safetensors").is_file():
            raise ValueError(f"adapters folder {self.adapters} has no adapters.safetensors; expected a run of "
                             "objective 'classify' with train = 'lora'")

    @property
    def embed_dim(self) -> int | None:
        """The `embed_dim` port: the run's backbone width."""
        value = self.run_config.get("backbone", {}).get("embed_dim")
        return int(value) if value is not None else None


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="weights",
        name="hf-gpt2",
        target="registry_llm.weights.hf_gpt2:build",
        summary="Import/export a Hugging Face GPT-2 checkpoint (safetensors) into gpt + learned + next-token.",
        modality="text",
        tags=("gpt2", "huggingface", "safetensors"),
        config=HFGPT2Config,
        requires={"causal": True, "tokens": "discrete", "position_mode": "additive"},
        exporter="registry_llm.weights.gpt2_export:export_run",
    ),
    ComponentSpec(
        kind="weights",
        name="hf-bert",
        target="registry_llm.weights.hf_bert:build",
        summary="Import/export a Hugging Face BERT checkpoint (safetensors) into bert (post-LN, token types, pooler) "
        "+ learned + masked-lm with BERT's head.",
        modality="text",
        tags=("bert", "huggingface", "safetensors"),
        config=HFBertConfig,
        requires={"causal": False, "tokens": "discrete", "position_mode": "additive"},
        exporter="registry_llm.weights.bert_export:export_run",
    ),
    ComponentSpec(
        kind="weights",
        name="text-run",
        target="registry_llm.weights.text_run:build",
        summary="The embedding, positions and backbone a text run of ours trained (e.g. runs/gpt-tiny), into a new "
        "pipeline (a classifier finetuned from it).",
        modality="text",
        tags=("finetuning", "safetensors"),
        config=TextRunConfig,
        provides={"embed_dim": None},
        requires={"tokens": "discrete"},
    ),
]
