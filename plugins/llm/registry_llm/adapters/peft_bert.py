"""A ``classify`` run on a BERT-shaped backbone as ``transformers``' BertForSequenceClassification, and its LoRA
adapters in ``peft``'s format, so ``PeftModel.from_pretrained(base, adapter)`` gives our logits.

BertForSequenceClassification scores ``classifier(tanh(pooler([CLS])))``: the head must pool with the backbone's
pooler (``pool = "pooler"``) and have a bias. Our attention projection is one fused ``qkv`` layer; BERT has
separate ``query`` / ``key`` / ``value``. A LoRA update of the fused layer, ``B A`` with ``B`` (3D, r), is exactly
three updates with the same ``A`` and the three row blocks of ``B``, so each becomes a peft adapter of its own.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any, Final

import torch

from registry_llm.adapters.lora import LoRALinear, lora_layers, merge_lora
from registry_llm.adapters.peft_format import write_adapter
from registry_llm.objectives.classify import ClassifyObjective
from registry_llm.weights.hf_bert import export_hf_bert, tokenizer_files

__all__ = ["HF_BERT_LAYERS", "export_bert_classifier"]

#: Our layer names inside a block -> BERT's (transformers), each with the row blocks of ours it holds.
HF_BERT_LAYERS: Final = {
    "attn.qkv": ("attention.self.query", "attention.self.key", "attention.self.value"),
    "attn.proj": ("attention.output.dense",),
    "mlp.fc": ("intermediate.dense",),
    "mlp.proj": ("output.dense",),
}


def _check(pipeline: Any) -> Any:
    objective, head = pipeline.objective, pipeline.parts.head
    if not isinstance(objective, ClassifyObjective) or head is None or not hasattr(head, "score"):
        raise ValueError("a classifier export needs objective 'classify' with head 'sequence-classification'")
    if head.pool != "pooler" or head.score.bias is None:
        raise ValueError(f"BertForSequenceClassification scores tanh(pooler([CLS])) with a biased `classifier`; this "
                         f"head pools {head.pool!r}{'' if head.score.bias is not None else ' without a bias'} "
                         "(set pool = 'pooler' and bias = true)")
    return head


def _adapter_tensors(name: str, layer: LoRALinear) -> dict[str, torch.Tensor]:
    """peft's tensors of one of our adapted layers (``blocks.3.attn.qkv``), split into BERT's layers."""
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", name)
    if match is None or match.group(2) not in HF_BERT_LAYERS:
        raise ValueError(f"LoRA layer {name} has no BERT counterpart (BERT adapts {', '.join(HF_BERT_LAYERS)})")
    theirs = HF_BERT_LAYERS[match.group(2)]
    rows = layer.lora_B.weight.shape[0] // len(theirs)
    out = {}
    for n, hf in enumerate(theirs):
        prefix = f"base_model.model.bert.encoder.layer.{match.group(1)}.{hf}"
        out[f"{prefix}.lora_A.weight"] = layer.lora_A.weight
        out[f"{prefix}.lora_B.weight"] = layer.lora_B.weight[n * rows:(n + 1) * rows]
    return out


def export_bert_classifier(pipeline: Any, out_dir: str | Path) -> Path:
    """``out``: the merged model (BertForSequenceClassification.from_pretrained(out)) with its WordPiece tokenizer;
    with LoRA also ``out/peft/base`` (the base weights, no classifier) and ``out/peft/adapter``."""
    head = _check(pipeline)
    parts = pipeline.parts
    layers = lora_layers(parts.backbone)
    adapters: dict[str, torch.Tensor] = {}
    for name, layer in layers.items():  # every layer has a BERT name before anything is written
        adapters.update(_adapter_tensors(name, layer))
    out = Path(out_dir)
    tokenizer = pipeline.tokenizer
    context = int(parts.positional.weight.shape[0])
    classes = list(getattr(pipeline.data, "class_names", None) or range(head.score.out_features))
    config = {"architectures": ["BertForSequenceClassification"], "num_labels": len(classes),
              "id2label": {str(i): str(c) for i, c in enumerate(classes)},
              "label2id": {str(c): i for i, c in enumerate(classes)}, "pad_token_id": tokenizer.pad_id,
              "problem_type": "single_label_classification"}
    classifier = {"classifier.weight": head.score.weight, "classifier.bias": head.score.bias}
    merged_parts = parts
    if layers:
        backbone = copy.deepcopy(parts.backbone)
        merge_lora(backbone)
        merged_parts = dataclasses.replace(parts, backbone=backbone)
    tokenizer_files(tokenizer, out, context)
    export_hf_bert(merged_parts, out, vocab_size=tokenizer.vocab_size, extra_config=config, mlm_head=False,
                   extra_tensors=classifier)
    if not layers:
        return out
    base = out / "peft" / "base"
    tokenizer_files(tokenizer, base, context)
    export_hf_bert(parts, base, vocab_size=tokenizer.vocab_size, extra_config=config, mlm_head=False,
                   drop_adapters=True)
    adapters.update({f"base_model.model.{k}": v for k, v in classifier.items()})
    leaves = sorted({hf for n in layers for hf in HF_BERT_LAYERS[n.split(".", 2)[2]]})
    write_adapter(out / "peft" / "adapter", adapters, pipeline.objective.config, base, modules_to_save=["classifier"],
                  fan_in_fan_out=False,
                  target_modules=rf"bert\.encoder\.layer\.\d+\.({'|'.join(re.escape(x) for x in leaves)})")
    return out
