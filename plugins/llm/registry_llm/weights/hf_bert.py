"""``hf-bert``: Hugging Face BERT checkpoints (``BertForPreTraining`` / ``BertForMaskedLM`` / ``BertModel`` in
``model.safetensors``) into ``bert`` (post-LN, token types, pooler) + ``learned`` positions + ``masked-lm`` with
BERT's head, and back out.

The key table maps BERT's separate query / key / value onto our fused ``qkv`` and accepts the old TF names of its
LayerNorms (``gamma`` / ``beta``). The next-sentence head (``cls.seq_relationship``) has no counterpart and is
skipped; the decoder matrix is the word embedding (tied), which is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from registry_core.atomic import atomic_path, write_json
from registry_core.interfaces import ModelParts
from registry_core.nn import KeyRule, KeyTable, load_parts, part_tensors
from registry_llm.weights._hf_config import CONFIG_FILE, HF_ACTIVATIONS, hf_activation_name, read_hf_config
from registry_llm.weights.specs import HF_BERT_FILES, HFBertConfig

if TYPE_CHECKING:
    from registry_core.hub import Pulled

__all__ = ["BERT_KEYS", "HFBertWeights", "bert_options", "build", "export_hf_bert", "export_run", "exportable",
           "tokenizer_files"]

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
_LAYER: Final = "bert.encoder.layer.{i}."
#: BERT's names <-> ours (``bert.`` is optional: a ``BertModel`` checkpoint has none).
BERT_KEYS: Final = KeyTable(
    name="hf-bert",
    rules=(
        KeyRule("embed.weight", "bert.embeddings.word_embeddings.weight", pad_rows=True),
        KeyRule("positional.weight", "bert.embeddings.position_embeddings.weight"),
        KeyRule("backbone.token_type.weight", "bert.embeddings.token_type_embeddings.weight"),
        KeyRule("backbone.ln_f.weight", "bert.embeddings.LayerNorm.weight"),
        KeyRule("backbone.ln_f.bias", "bert.embeddings.LayerNorm.bias"),
        *(KeyRule(f"backbone.blocks.{{i}}.attn.qkv.{kind}", f"{_LAYER}attention.self.{name}.{kind}", part=(n, 3))
          for kind in ("weight", "bias") for n, name in enumerate(("query", "key", "value"))),
        *KeyTable.layered("backbone.blocks.{i}.", _LAYER, (
            ("attn.proj.weight", "attention.output.dense.weight", False),
            ("attn.proj.bias", "attention.output.dense.bias", False),
            ("ln1.weight", "attention.output.LayerNorm.weight", False),
            ("ln1.bias", "attention.output.LayerNorm.bias", False),
            ("mlp.fc.weight", "intermediate.dense.weight", False),
            ("mlp.fc.bias", "intermediate.dense.bias", False),
            ("mlp.proj.weight", "output.dense.weight", False),
            ("mlp.proj.bias", "output.dense.bias", False),
            ("ln2.weight", "output.LayerNorm.weight", False),
            ("ln2.bias", "output.LayerNorm.bias", False),
        )),
        KeyRule("backbone.pooler.weight", "bert.pooler.dense.weight"),
        KeyRule("backbone.pooler.bias", "bert.pooler.dense.bias"),
        KeyRule("objective.head.transform.weight", "cls.predictions.transform.dense.weight"),
        KeyRule("objective.head.transform.bias", "cls.predictions.transform.dense.bias"),
        KeyRule("objective.head.transform_norm.weight", "cls.predictions.transform.LayerNorm.weight"),
        KeyRule("objective.head.transform_norm.bias", "cls.predictions.transform.LayerNorm.bias"),
        KeyRule("objective.head.bias", "cls.predictions.bias", pad_rows=True),
    ),
    # the next-sentence head has no counterpart; the decoder is the tied word embedding and its bias is
    # cls.predictions.bias (both checked in load_into); position ids are a constant buffer
    ignore=("cls.seq_relationship.*", "cls.predictions.decoder.*", "bert.embeddings.position_ids"),
)


def _read_config(folder: Path) -> dict[str, Any]:
    cfg = read_hf_config(folder, who="hf-bert", family="BERT", model_type="bert",
                         ints=("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                               "vocab_size", "max_position_embeddings"),
                         activation_key="hidden_act", activation_default="gelu")
    path = folder / CONFIG_FILE
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"hf-bert: {path} has position_embedding_type {cfg['position_embedding_type']!r}; only "
                         "'absolute' (a learned table) loads")
    return cfg


def _normalized(key: str) -> str:
    """BERT's old TF names (``LayerNorm.gamma`` / ``beta``) as today's (``weight`` / ``bias``); ``bert.`` added when
    the checkpoint is a bare ``BertModel``."""
    if key.endswith("LayerNorm.gamma"):
        key = key[: -len("gamma")] + "weight"
    elif key.endswith("LayerNorm.beta"):
        key = key[: -len("beta")] + "bias"
    return key if key.startswith(("bert.", "cls.")) else f"bert.{key}"


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return {_normalized(k): f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"hf-bert: cannot read {path}: {exc}") from None


def bert_options(path: str | Path) -> dict[str, Any]:
    """The ``bert`` backbone options that reproduce the checkpoint in folder ``path`` exactly (post-LN)."""
    folder = Path(path)
    cfg = _read_config(folder)
    with safe_open(str(folder / WEIGHTS_FILE), framework="pt") as f:
        pooler = any(_normalized(k).startswith("bert.pooler.") for k in f.keys())  # noqa: SIM118
    return {
        "embed_dim": cfg["hidden_size"],
        "depth": cfg["num_hidden_layers"],
        "heads": cfg["num_attention_heads"],
        "mlp_ratio": cfg["intermediate_size"] / cfg["hidden_size"],
        "activation": HF_ACTIVATIONS[cfg.get("hidden_act", "gelu")],
        "layer_norm_eps": float(cfg.get("layer_norm_eps", 1e-12)),
        "max_positions": cfg["max_position_embeddings"],
        "type_vocab_size": int(cfg.get("type_vocab_size", 2)),
        "norm": "post",
        "bias": True,
        "dropout": 0.0,
        "pooler": pooler,
    }


class HFBertWeights:
    """A BERT checkpoint: ``meta``, ``files()``, ``load_into(parts)``; fills the encoder and (``fills``) the MLM head."""

    def __init__(self, path: str | Path, fills: str = "encoder+decoder") -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"hf-bert: weights folder {self.path} does not exist")
        self.config = _read_config(self.path)
        if not (self.path / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"hf-bert: {self.path / WEIGHTS_FILE} is missing (only safetensors are loaded)")
        self.fills: tuple[str, ...] = tuple(fills.split("+"))
        #: What was pulled from the hub (None for a local folder): repo, commit and the files' sha256, for the lock.
        self.pulled: Pulled | None = None
        cfg = self.config
        self.meta: dict[str, Any] = {
            "format": "hf-bert", "embed_dim": cfg["hidden_size"], "depth": cfg["num_hidden_layers"],
            "heads": cfg["num_attention_heads"], "max_positions": cfg["max_position_embeddings"],
            "vocab_size": cfg["vocab_size"], "type_vocab_size": int(cfg.get("type_vocab_size", 2)),
            "layer_norm_eps": float(cfg.get("layer_norm_eps", 1e-12)),
            "tokenizer_files": [n for n in TOKENIZER_FILES if (self.path / n).is_file()],
        }

    def files(self) -> list[Path]:
        """The checkpoint's files (config, tensors, tokenizer) whose hashes go into the lock."""
        return [self.path / n for n in (CONFIG_FILE, WEIGHTS_FILE, *self.meta["tokenizer_files"])]

    def _check_parts(self, parts: ModelParts) -> None:
        want = bert_options(self.path)
        backbone = parts.backbone
        have = {k: getattr(backbone, k, None) for k in ("embed_dim", "depth", "heads", "activation", "norm",
                                                         "type_vocab_size")}
        wrong = [f"{k}={have[k]!r} (checkpoint: {want[k]!r})" for k in have if have[k] != want[k]]
        if getattr(backbone, "causal", None) is not False:
            wrong.append("causal=True (checkpoint: a bidirectional encoder)")
        eps = float(getattr(backbone, "eps", want["layer_norm_eps"]))
        if abs(eps - want["layer_norm_eps"]) > 1e-15:
            wrong.append(f"layer_norm_eps={eps} (checkpoint: {want['layer_norm_eps']})")
        if wrong:
            raise ValueError(f"hf-bert: backbone does not match {self.path / CONFIG_FILE}: {'; '.join(wrong)}; "
                             "build it with registry_llm.weights.hf_bert.bert_options(path)")
        if getattr(parts.positional, "mode", None) != "additive" or not hasattr(parts.positional, "weight"):
            raise TypeError("hf-bert: the positional encoder must be 'learned' (BERT has a learned position table)")

    def load_into(self, parts: ModelParts) -> None:
        """Copy the checkpoint into ``parts``; every check runs before any copy."""
        self._check_parts(parts)
        tensors = _read_tensors(self.path / WEIGHTS_FILE)
        decoder = tensors.get("cls.predictions.decoder.weight")
        words = tensors.get("bert.embeddings.word_embeddings.weight")
        if decoder is not None and words is not None and not torch.equal(decoder, words):
            raise ValueError(f"hf-bert: {self.path / WEIGHTS_FILE} has a decoder different from the word embeddings; "
                             "only tied MLM heads load")
        if not hasattr(parts.backbone, "pooler"):
            tensors = {k: v for k, v in tensors.items() if not k.startswith("bert.pooler.")}
        if "decoder" in self.fills and not any(k.startswith("cls.predictions.") for k in tensors):
            raise ValueError(f"hf-bert: {self.path / WEIGHTS_FILE} has no MLM head (cls.predictions.*): a BertModel "
                             "checkpoint; load it with fills = 'encoder'")
        load_parts(parts, tensors, fills=self.fills, table=BERT_KEYS, source=f"hf-bert {self.path / WEIGHTS_FILE}")


def export_hf_bert(parts: ModelParts, out_dir: str | Path, *, vocab_size: int | None = None,
                   extra_config: Mapping[str, Any] | None = None, mlm_head: bool = True,
                   extra_tensors: Mapping[str, torch.Tensor] | None = None, drop_adapters: bool = False) -> Path:
    """Write ``parts`` (bert, post-LN + learned positions; with ``mlm_head`` masked-lm with the 'bert' head) as a
    Hugging Face ``BertForMaskedLM`` folder (config.json + model.safetensors), or without it the encoder alone
    plus ``extra_tensors`` under their transformers names (a classifier); each file written atomically.
    ``drop_adapters`` leaves LoRA adapters out (the base a peft adapter loads onto)."""
    out = Path(out_dir)
    backbone = parts.backbone
    if getattr(backbone, "causal", True) or getattr(backbone, "norm", "pre") != "post":
        raise ValueError("export_hf_bert: BERT is a bidirectional post-LN encoder (bert with norm = 'post')")
    head = getattr(parts.objective, "head", None)
    if mlm_head and (getattr(head, "transform", None) is None or not getattr(head, "tied", False)):
        raise ValueError("export_hf_bert: the objective needs BERT's tied MLM head (masked-lm with head = 'bert')")
    embed = parts.embed.weight
    vocab = vocab_size or embed.shape[0]
    groups = ("encoder", "decoder") if mlm_head else ("encoder",)
    ours = {k: v.detach() for k, v in part_tensors(parts, groups).items()
            if not (drop_adapters and (".lora_A." in k or ".lora_B." in k))}
    ours["embed.weight"] = ours["embed.weight"][:vocab]
    if mlm_head:
        ours["objective.head.bias"] = ours["objective.head.bias"][:vocab]
    converted = BERT_KEYS.convert(ours, "theirs")
    if converted.unmatched:
        raise ValueError(f"export_hf_bert: tensors with no BERT counterpart: {', '.join(converted.unmatched)}")
    tensors = {k: v.to("cpu", torch.float32).contiguous() for k, v in converted.tensors.items()}
    tensors.update({k: v.detach().to("cpu", torch.float32).contiguous() for k, v in (extra_tensors or {}).items()})
    first = backbone.blocks[0]
    activation = getattr(backbone, "activation", "gelu")
    config = {
        "model_type": "bert", "architectures": ["BertForMaskedLM" if mlm_head else "BertModel"], "vocab_size": vocab,
        "hidden_size": backbone.embed_dim, "num_hidden_layers": backbone.depth,
        "num_attention_heads": backbone.heads, "intermediate_size": first.mlp.fc.out_features,
        "hidden_act": hf_activation_name(activation),
        "max_position_embeddings": int(parts.positional.weight.shape[0]),
        "type_vocab_size": int(getattr(backbone, "type_vocab_size", 0)) or 1,
        "layer_norm_eps": float(backbone.eps), "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        "classifier_dropout": None,
        "position_embedding_type": "absolute", "initializer_range": 0.02, "tie_word_embeddings": mlm_head,
        **dict(extra_config or {}),
    }
    if not getattr(backbone, "type_vocab_size", 0):  # BERT always has one token type: ours adds none, so zeros
        tensors["bert.embeddings.token_type_embeddings.weight"] = torch.zeros(1, backbone.embed_dim)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    write_json(out / CONFIG_FILE, config)
    return out


def exportable(pipeline: Any, mlm_head: bool = True) -> None:
    """ValueError naming the first part of a run that BERT cannot hold: post-LN encoder, learned positions, BERT's
    tied MLM head (``mlm_head``), a WordPiece tokenizer."""
    slots, parts = pipeline.slots, pipeline.parts
    backbone = parts.backbone
    if getattr(backbone, "causal", True) or getattr(backbone, "norm", "pre") != "post":
        raise ValueError(f"its backbone {slots['backbone'].spec.id} is not a post-LN bidirectional encoder; BERT is "
                         "one (bert with norm = \"post\")")
    if getattr(parts.positional, "mode", None) != "additive" or not isinstance(getattr(parts.positional, "weight", None),
                                                                           torch.Tensor):
        raise ValueError("its positional encoder is not a learned table; BERT has one ([positional] use = \"learned\")")
    head = getattr(pipeline.objective, "head", None)
    if mlm_head and (getattr(head, "transform", None) is None or not getattr(head, "tied", False)):
        raise ValueError(f"objective {slots['objective'].spec.id} has no BERT MLM head tied to the embedding "
                         "(masked-lm with head = \"bert\", tie_weights = true)")
    if not callable(getattr(pipeline.tokenizer, "vocab_txt", None)):
        raise ValueError(f"tokenizer {slots['tokenizer'].spec.id} is not a WordPiece; BERT needs one (wordpiece)")


def export_run(pipeline: Any, out_dir: str | Path) -> Path:
    """A trained run (bert post-LN + learned + masked-lm with BERT's head + wordpiece) as a folder transformers opens:
    ``BertForMaskedLM.from_pretrained(out)`` and ``AutoTokenizer.from_pretrained(out)``.

    ValueError, before anything is written, when a part of the run has no BERT counterpart.
    """
    exportable(pipeline)
    out = Path(out_dir)
    tokenizer_files(pipeline.tokenizer, out, int(pipeline.parts.positional.weight.shape[0]))
    vocab = getattr(pipeline.objective.head, "vocab_size", None) or pipeline.tokenizer.vocab_size
    return export_hf_bert(pipeline.parts, out, vocab_size=vocab,
                          extra_config={"pad_token_id": pipeline.tokenizer.pad_id})


def tokenizer_files(tokenizer: Any, out: Path, context: int) -> None:
    """vocab.txt, tokenizer.json and the tokenizer_config.json ``AutoTokenizer`` opens as a BertTokenizer."""
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(out)  # tokenizer.json and vocab.txt
    config = tokenizer.config
    write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "BertTokenizer", "do_lower_case": bool(config.lowercase), "model_max_length": context,
        "cls_token": config.cls_token, "sep_token": config.sep_token, "pad_token": config.pad_token,
        "mask_token": config.mask_token, "unk_token": config.unk_token,
    })


def build(config: HFBertConfig) -> HFBertWeights:
    if config.hub is None:
        return HFBertWeights(str(config.path), config.fills)
    pulled = config.pull(HF_BERT_FILES)
    weights = HFBertWeights(pulled.folder, config.fills)
    weights.pulled = pulled
    return weights
