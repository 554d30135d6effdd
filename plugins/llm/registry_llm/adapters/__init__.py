"""Parameter-efficient finetuning: LoRA adapters on a backbone's linear projections."""

from __future__ import annotations

from registry_llm.adapters.lora import (
    LoRAError,
    LoRALinear,
    add_lora,
    lora_disabled,
    lora_layers,
    lora_state,
    merge_lora,
)

__all__ = ["LoRAError", "LoRALinear", "add_lora", "lora_disabled", "lora_layers", "lora_state", "merge_lora"]
