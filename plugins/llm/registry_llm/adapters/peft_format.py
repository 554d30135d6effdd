"""A ``classify`` run with a GPT-2-shaped backbone as ``transformers``' GPT2ForSequenceClassification, and its LoRA
adapters in ``peft``'s format, so ``PeftModel.from_pretrained(base, adapter)`` gives our logits.

peft's file holds ``base_model.model.<transformers name>.lora_A.weight`` / ``lora_B.weight`` (A is (r, in), B is
(out, r) for GPT-2's Conv1D too, with ``fan_in_fan_out``) and the head as ``base_model.model.score.weight``
(``modules_to_save``); ``target_modules`` is a regular expression naming exactly the layers we adapted.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any, Final

import torch
from safetensors.torch import save_file

from registry_core.atomic import atomic_path, write_json
from registry_llm.adapters.lora import lora_layers, merge_lora
from registry_llm.objectives.classify import ClassifyObjective
from registry_llm.weights.hf_gpt2 import export_hf_gpt2, tokenizer_files

__all__ = ["ADAPTER_CONFIG", "ADAPTER_WEIGHTS", "HF_GPT2_LAYERS", "export_classifier", "write_adapter"]

#: Our layer names inside a block -> GPT-2's (transformers).
HF_GPT2_LAYERS: Final = {"attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj", "mlp.fc": "mlp.c_fc",
                         "mlp.proj": "mlp.c_proj"}
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def _check(pipeline: Any) -> tuple[Any, Any]:
    objective, head = pipeline.objective, pipeline.parts.head
    if not isinstance(objective, ClassifyObjective) or head is None or not hasattr(head, "score"):
        raise ValueError("a classifier export needs objective 'classify' with head 'sequence-classification'")
    if head.pool != "last" or head.score.bias is not None:
        raise ValueError(f"GPT2ForSequenceClassification reads the last real token through a bias-free `score`; this "
                         f"head pools {head.pool!r}{' with a bias' if head.score.bias is not None else ''}")
    return objective, head


def _hf_name(ours: str) -> str:
    """``blocks.3.attn.qkv`` -> ``transformer.h.3.attn.c_attn``."""
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", ours)
    if match is None or match.group(2) not in HF_GPT2_LAYERS:
        raise ValueError(f"LoRA layer {ours} has no GPT-2 counterpart (GPT-2 adapts {', '.join(HF_GPT2_LAYERS)})")
    return f"transformer.h.{match.group(1)}.{HF_GPT2_LAYERS[match.group(2)]}"


def export_classifier(pipeline: Any, out_dir: str | Path) -> Path:
    """``out``: the merged model (GPT2ForSequenceClassification.from_pretrained(out)) with its tokenizer; with LoRA
    also ``out/peft/base`` (the base weights, no head) and ``out/peft/adapter`` (the adapters and the head)."""
    objective, head = _check(pipeline)
    parts = pipeline.parts
    layers = lora_layers(parts.backbone)
    hf_names = {name: _hf_name(name) for name in layers}  # every layer has a GPT-2 name before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = pipeline.tokenizer
    classes = list(getattr(pipeline.data, "class_names", None) or range(head.score.out_features))
    labels = {"architectures": ["GPT2ForSequenceClassification"], "num_labels": len(classes),
              "id2label": {str(i): str(c) for i, c in enumerate(classes)},
              "label2id": {str(c): i for i, c in enumerate(classes)}}
    context = int(parts.positional.weight.shape[0])
    ids = tokenizer_files(tokenizer, out, context)
    vocab = tokenizer.vocab_size
    score = {"score.weight": head.score.weight}
    merged_parts = parts
    if layers:
        backbone = copy.deepcopy(parts.backbone)
        merge_lora(backbone)
        merged_parts = dataclasses.replace(parts, backbone=backbone)
    export_hf_gpt2(merged_parts, out, vocab_size=vocab, extra_config={**ids, **labels}, extra_tensors=score)
    if not layers:
        return out
    base = out / "peft" / "base"
    export_hf_gpt2(parts, base, vocab_size=vocab, extra_config={**ids, **labels}, drop_adapters=True)
    tokenizer_files(tokenizer, base, context)
    adapter = out / "peft" / "adapter"
    tensors: dict[str, torch.Tensor] = {}
    for name, layer in layers.items():
        hf = hf_names[name]
        tensors[f"base_model.model.{hf}.lora_A.weight"] = layer.lora_A.weight
        tensors[f"base_model.model.{hf}.lora_B.weight"] = layer.lora_B.weight
    tensors["base_model.model.score.weight"] = head.score.weight
    leaves = sorted({HF_GPT2_LAYERS[n.split(".", 2)[2]] for n in layers})
    write_adapter(adapter, tensors, objective.config, base, modules_to_save=["score"], fan_in_fan_out=True,
                  target_modules=rf"transformer\.h\.\d+\.({'|'.join(re.escape(x) for x in leaves)})")
    return out


def write_adapter(folder: Path, tensors: dict[str, torch.Tensor], cfg: Any, base: Path, *, modules_to_save: list[str],
                  fan_in_fan_out: bool, target_modules: str) -> None:
    """peft's two files in ``folder``: the tensors (float32) and a LoRA ``SEQ_CLS`` config from the objective's
    ``lora_*`` options, whose base is the folder ``base``."""
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / ADAPTER_WEIGHTS) as tmp:  # a copy each: split adapters share one A
        save_file({k: v.detach().to("cpu", torch.float32).clone() for k, v in tensors.items()}, str(tmp),
                  metadata={"format": "pt"})
    write_json(folder / ADAPTER_CONFIG, {
        "peft_type": "LORA", "task_type": "SEQ_CLS", "base_model_name_or_path": str(base.resolve()),
        "r": cfg.lora_rank, "lora_alpha": cfg.lora_alpha, "lora_dropout": cfg.lora_dropout, "bias": "none",
        "fan_in_fan_out": fan_in_fan_out, "inference_mode": True, "modules_to_save": modules_to_save,
        "target_modules": target_modules, "init_lora_weights": True, "use_rslora": False, "use_dora": False,
    })
