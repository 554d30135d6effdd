"""``hf-gpt2``: Hugging Face GPT-2 checkpoints in and out of ``gpt`` + ``learned`` positions + ``next-token``.

GPT-2 stores its linear layers as ``Conv1D`` with ``(in, out)`` weights, the transpose of
``nn.Linear``; its fused ``c_attn`` splits into q, k, v in the same order as our fused ``qkv``. The LM
head is the token embedding (tied). Tensors are read and written with safetensors only.
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
from registry_llm.weights.specs import HF_GPT2_FILES, HFGPT2Config

if TYPE_CHECKING:
    from registry_core.hub import Pulled

__all__ = ["GPT2_KEYS", "HFGPT2Weights", "build", "export_hf_gpt2", "export_run", "exportable", "gpt_options",
           "pipeline_options", "tokenizer_files"]

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")



#: GPT-2's names (``transformer.`` optional) <-> ours; Conv1D weights are the transpose of nn.Linear's.
GPT2_KEYS: Final = KeyTable(
    name="hf-gpt2",
    rules=(
        KeyRule("embed.weight", "wte.weight", pad_rows=True),
        KeyRule("positional.weight", "wpe.weight", pad_rows=True),
        KeyRule("backbone.ln_f.weight", "ln_f.weight"),
        KeyRule("backbone.ln_f.bias", "ln_f.bias"),
        *KeyTable.layered("backbone.blocks.{i}.", "h.{i}.", (
            ("ln1.weight", "ln_1.weight", False),
            ("ln1.bias", "ln_1.bias", False),
            ("attn.qkv.weight", "attn.c_attn.weight", True),
            ("attn.qkv.bias", "attn.c_attn.bias", False),
            ("attn.proj.weight", "attn.c_proj.weight", True),
            ("attn.proj.bias", "attn.c_proj.bias", False),
            ("ln2.weight", "ln_2.weight", False),
            ("ln2.bias", "ln_2.bias", False),
            ("mlp.fc.weight", "mlp.c_fc.weight", True),
            ("mlp.fc.bias", "mlp.c_fc.bias", False),
            ("mlp.proj.weight", "mlp.c_proj.weight", True),
            ("mlp.proj.bias", "mlp.c_proj.bias", False),
        )),
    ),
    ignore=("h.*.attn.bias", "h.*.attn.masked_bias"),  # older checkpoints store the causal mask as a buffer
    prefixes=("transformer.",),
    export_prefix="transformer.",
)


def _read_config(folder: Path) -> dict[str, Any]:
    cfg = read_hf_config(folder, who="hf-gpt2", family="GPT-2", model_type="gpt2",
                         ints=("n_embd", "n_layer", "n_head", "n_positions", "vocab_size"),
                         activation_key="activation_function", activation_default="gelu_new")
    path = folder / CONFIG_FILE
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if cfg.get(flag):
            raise ValueError(f"hf-gpt2: {path} sets {flag}=true, which the gpt backbone does not implement")
    if cfg.get("scale_attn_weights", True) is False:
        raise ValueError(f"hf-gpt2: {path} sets scale_attn_weights=false, which the gpt backbone does not implement")
    if cfg.get("tie_word_embeddings", True) is False:
        raise ValueError(f"hf-gpt2: {path} has an untied lm_head (tie_word_embeddings=false); only tied heads load")
    return cfg


def gpt_options(path: str | Path) -> dict[str, Any]:
    """The ``gpt`` backbone options that match the checkpoint in ``path``."""
    cfg = _read_config(Path(path))
    n_inner = cfg.get("n_inner") or 4 * cfg["n_embd"]
    return {
        "embed_dim": cfg["n_embd"],
        "depth": cfg["n_layer"],
        "heads": cfg["n_head"],
        "max_positions": cfg["n_positions"],
        "mlp_ratio": n_inner / cfg["n_embd"],
        "activation": HF_ACTIVATIONS[cfg.get("activation_function", "gelu_new")],
        "layer_norm_eps": float(cfg.get("layer_norm_epsilon", 1e-5)),
        "bias": True,
        "dropout": 0.0,
    }


def pipeline_options(path: str | Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Slot -> (component name, options) for a pipeline that runs the checkpoint: gpt, learned, next-token, bpe."""
    folder = Path(path)
    backbone = gpt_options(folder)
    cfg = _read_config(folder)
    tokenizer = folder / "tokenizer.json" if (folder / "tokenizer.json").is_file() else folder
    return {
        "tokenizer": ("bpe", {"path": str(tokenizer)}),
        "positional_encoder": ("learned", {"max_positions": backbone["max_positions"]}),
        "backbone": ("gpt", backbone),
        "objective": ("next-token", {"vocab_size": cfg["vocab_size"]}),
    }


def _param(obj: Any, attr: str, what: str) -> torch.Tensor:
    value = getattr(obj, attr, None)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"hf-gpt2: {what} has no tensor {attr!r}; expected {what} of the gpt stack")
    return value


class HFGPT2Weights:
    """A local GPT-2 checkpoint: ``meta``, ``files()`` and ``load_into(parts)``.

    It fills the encoder (token embedding, positions, blocks): GPT-2's LM head is the embedding, tied.
    """

    fills: tuple[str, ...] = ("encoder",)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        #: What was pulled from the hub (None for a local folder): repo, commit and the files' sha256, for the lock.
        self.pulled: Pulled | None = None
        if not self.path.is_dir():
            raise FileNotFoundError(f"hf-gpt2: weights folder {self.path} does not exist")
        self.config = _read_config(self.path)
        if not (self.path / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"hf-gpt2: {self.path / WEIGHTS_FILE} is missing (only safetensors are loaded)")
        cfg = self.config
        tokenizer = [n for n in TOKENIZER_FILES if (self.path / n).is_file()]
        self.meta: dict[str, Any] = {
            "format": "hf-gpt2",
            "embed_dim": cfg["n_embd"],
            "depth": cfg["n_layer"],
            "heads": cfg["n_head"],
            "max_positions": cfg["n_positions"],
            "vocab_size": cfg["vocab_size"],
            "activation": HF_ACTIVATIONS[cfg.get("activation_function", "gelu_new")],
            "tokenizer_files": tokenizer,
        }

    def files(self) -> list[Path]:
        """The checkpoint's files (config, tensors, tokenizer) whose hashes go into the lock."""
        names = [CONFIG_FILE, WEIGHTS_FILE, *self.meta["tokenizer_files"]]
        return [self.path / n for n in names]

    def _tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor of the checkpoint, keyed without the ``transformer.`` prefix."""
        path = self.path / WEIGHTS_FILE
        try:
            with safe_open(str(path), framework="pt") as f:
                return {GPT2_KEYS.strip_prefix(k): f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise ValueError(f"hf-gpt2: cannot read {path}: {exc}") from None

    def _check_backbone(self, backbone: Any) -> None:
        want = gpt_options(self.path)
        have = {
            "embed_dim": getattr(backbone, "embed_dim", None),
            "depth": getattr(backbone, "depth", None),
            "heads": getattr(backbone, "heads", None),
            "activation": getattr(backbone, "activation", None),
            "causal": getattr(backbone, "causal", None),
        }
        wrong = [f"{k}={have[k]!r} (checkpoint: {want[k]!r})" for k in ("embed_dim", "depth", "heads", "activation")
                 if have[k] != want[k]]
        if have["causal"] is not True:
            wrong.append("causal=False (checkpoint: a causal decoder)")
        eps = getattr(backbone, "eps", want["layer_norm_eps"])
        if abs(eps - want["layer_norm_eps"]) > 1e-12:
            wrong.append(f"layer_norm_eps={eps} (checkpoint: {want['layer_norm_eps']})")
        if wrong:
            raise ValueError(f"hf-gpt2: backbone does not match {self.path / CONFIG_FILE}: {'; '.join(wrong)}; "
                             "build it with registry_llm.weights.hf_gpt2.gpt_options(path)")

    def load_into(self, parts: ModelParts) -> None:
        """Copy the checkpoint into ``parts`` (embed, learned positions, gpt); all checks run before any copy."""
        self._check_backbone(parts.backbone)
        if getattr(parts.positional, "mode", None) != "additive" or not hasattr(parts.positional, "weight"):
            raise TypeError("hf-gpt2: the positional encoder must be 'learned' (GPT-2 has a learned position table)")
        _param(parts.embed, "weight", "the token embedding")
        tensors = self._tensors()
        head = tensors.pop("lm_head.weight", None)
        if head is not None and not torch.equal(head, tensors.get("wte.weight", head)):
            raise ValueError(
                f"hf-gpt2: {self.path / WEIGHTS_FILE} has an lm_head different from wte; only tied heads load"
            )
        load_parts(parts, tensors, fills=self.fills, table=GPT2_KEYS, source=f"hf-gpt2 {self.path / WEIGHTS_FILE}")


def export_hf_gpt2(
    parts: ModelParts,
    out_dir: str | Path,
    *,
    vocab_size: int | None = None,
    tokenizer: Any = None,
    extra_config: Mapping[str, Any] | None = None,
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
    drop_adapters: bool = False,
) -> Path:
    """Write ``parts`` (gpt + learned positions + tied embedding) as a Hugging Face GPT-2 folder.

    ``vocab_size`` cuts a padded embedding table back to the real vocabulary (default: all rows).
    ``tokenizer``, when given, is saved with ``tokenizer.save(out_dir / "tokenizer.json")``. Each file
    is written atomically, so a failed export leaves earlier files intact.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backbone = parts.backbone
    if not getattr(backbone, "causal", False):
        raise ValueError("export_hf_gpt2: the backbone is not causal; GPT-2 is a decoder")
    activation = getattr(backbone, "activation", "gelu-tanh")
    hf_act = hf_activation_name(activation)
    embed = _param(parts.embed, "weight", "the token embedding")
    wpe = _param(parts.positional, "weight", "the positional encoder (must be 'learned')")
    vocab = vocab_size or embed.shape[0]
    first = backbone.blocks[0]
    if first.attn.qkv.bias is None:
        raise ValueError("export_hf_gpt2: the backbone was built with bias=false; GPT-2 has biases")
    ours = {k: v.detach() for k, v in part_tensors(parts, ("encoder",)).items()}
    adapters = sorted(k for k in ours if ".lora_A." in k or ".lora_B." in k)
    if adapters and not drop_adapters:
        raise ValueError(f"export_hf_gpt2: the backbone holds LoRA adapters ({adapters[0]}, ...); merge them first "
                         "(registry_llm.adapters.merge_lora) or export them apart in peft's format")
    ours = {k: v for k, v in ours.items() if k not in adapters}  # the base weights alone
    ours["embed.weight"] = ours["embed.weight"][:vocab]
    converted = GPT2_KEYS.convert(ours, "theirs")
    if converted.unmatched:
        raise ValueError(f"export_hf_gpt2: tensors with no GPT-2 counterpart: {', '.join(converted.unmatched)}")
    tensors = {k: v.to("cpu", torch.float32).contiguous() for k, v in converted.tensors.items()}
    tensors.update({k: v.detach().to("cpu", torch.float32).contiguous() for k, v in (extra_tensors or {}).items()})
    config = {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": vocab,
        "n_positions": wpe.shape[0],
        "n_embd": backbone.embed_dim,
        "n_layer": backbone.depth,
        "n_head": backbone.heads,
        "n_inner": first.mlp.fc.out_features,
        "activation_function": hf_act,
        "layer_norm_epsilon": float(getattr(backbone, "eps", 1e-5)),
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "use_cache": True,
        **dict(extra_config or {}),
    }
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    write_json(out / CONFIG_FILE, config)
    if tokenizer is not None:
        tokenizer.save(out / "tokenizer.json")
    return out


def exportable(pipeline: Any, lm_head: bool = True) -> None:
    """ValueError naming the first part of a run that GPT-2 cannot hold: decoder, learned positions, tied head (of an
    LM), BPE."""
    slots, parts = pipeline.slots, pipeline.parts
    if not getattr(parts.backbone, "causal", False):
        raise ValueError(f"its backbone {slots['backbone'].spec.id} is not a causal decoder; GPT-2 is one (gpt)")
    positional = slots.get("positional")
    if getattr(parts.positional, "mode", None) != "additive" or not isinstance(getattr(parts.positional, "weight", None),
                                                                           torch.Tensor):
        name = positional.spec.id if positional is not None else "none"
        raise ValueError(f"its positional encoder is {name}; GPT-2 has a learned position table "
                         "(train with [positional] use = \"learned\")")
    head = getattr(pipeline.objective, "head", None)
    if lm_head and not getattr(head, "tied", False):
        raise ValueError(f"the LM head of objective {slots['objective'].spec.id} is not tied to the token embedding; "
                         "GPT-2 ties them (tie_weights = true)")
    if not callable(getattr(pipeline.tokenizer, "to_json", None)):
        raise ValueError(f"tokenizer {slots['tokenizer'].spec.id} has no tokenizer.json form; GPT-2 needs a BPE (bpe)")


def tokenizer_files(tokenizer: Any, out: Path, context: int) -> dict[str, Any]:
    """tokenizer.json plus the tokenizer_config.json that lets ``AutoTokenizer`` open it; the special-token ids."""
    tokenizer.save(out / "tokenizer.json")
    specials = {f"{kind}_token": getattr(tokenizer.config, f"{kind}_token", "") for kind in ("bos", "eos", "pad", "mask")}
    specials = {k: v for k, v in specials.items() if v}
    write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",  # tokenizer.json as it is: the same ids as ours
        "model_max_length": context,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        **specials,
    })
    write_json(out / "special_tokens_map.json", specials)
    ids = {"bos_token_id": tokenizer.bos_id, "eos_token_id": tokenizer.eos_id, "pad_token_id": tokenizer.pad_id}
    return {k: v for k, v in ids.items() if v is not None}


def export_run(pipeline: Any, out_dir: str | Path) -> Path:
    """A trained run (gpt + learned + tied next-token + bpe) as a folder ``transformers`` opens with its tokenizer:
    ``GPT2LMHeadModel.from_pretrained(out)`` and ``AutoTokenizer.from_pretrained(out)``.

    ValueError, before anything is written, when a part of the run has no GPT-2 counterpart. (``export --to
    hf-gpt2`` goes through registry_llm.weights.gpt2_export, which sends a ``classify`` run elsewhere.)
    """
    exportable(pipeline)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = pipeline.tokenizer
    vocab = getattr(pipeline.objective.head, "vocab_size", None) or tokenizer.vocab_size  # the logits' width
    ids = tokenizer_files(tokenizer, out, int(pipeline.parts.positional.weight.shape[0]))
    return export_hf_gpt2(pipeline.parts, out, vocab_size=vocab, extra_config=ids)


def build(config: HFGPT2Config) -> HFGPT2Weights:
    if config.hub is None:
        return HFGPT2Weights(str(config.path))
    pulled = config.pull(HF_GPT2_FILES)
    weights = HFGPT2Weights(pulled.folder)
    weights.pulled = pulled
    return weights
