"""LoRA (Hu et al., 2021): ``y = W x + b + (alpha / r) * B A dropout(x)`` with ``A`` (r, in) and ``B`` (out, r), ``B``
zero at the start so training begins from the pretrained function.

Why our own and not ``peft.inject_adapter_in_model``: peft renames the wrapped weights (``qkv.weight`` becomes
``qkv.base_layer.weight``), which would give a LoRA run's ``model.safetensors`` other keys than every other run of
the same backbone (``from-run``, ``export --to hf-gpt2`` and the lock read those keys). ``LoRALinear`` is an
``nn.Linear`` that keeps ``weight`` and ``bias`` and adds ``lora_A.weight`` / ``lora_B.weight``, initialised as peft
does (A Kaiming-uniform with a = sqrt(5), B zeros), so adapters export to peft's format unchanged
(``registry_llm.adapters.peft_format``) and peft loads them onto the exported transformers model.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from registry_core import RegistryCoreError

__all__ = ["LoRAError", "LoRALinear", "add_lora", "lora_disabled", "lora_layers", "lora_state", "merge_lora"]


class LoRAError(RegistryCoreError, ValueError):
    """LoRA options that cannot apply to this backbone (rank, targets); the message names what there is."""


class LoRALinear(nn.Linear):
    """A linear layer with a low-rank update; ``weight`` and ``bias`` are the frozen base, the adapters train."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        # On the meta device: the layer takes the base's own weight and bias, so nothing is allocated for them here.
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None, device="meta")
        self.weight = base.weight
        self.bias = base.bias
        self.rank = rank
        self.alpha = alpha
        self.scaling = alpha / rank
        self.lora_A = nn.Linear(base.in_features, rank, bias=False, device=base.weight.device, dtype=base.weight.dtype)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False, device=base.weight.device,
                                dtype=base.weight.dtype)
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        #: False: the layer computes its base function alone (``lora_disabled``).
        self.enabled = True
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        if not self.enabled:
            return out
        return out + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling

    def delta(self) -> torch.Tensor:
        """The update ``(alpha / r) B A`` in the shape of ``weight``."""
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rank={self.rank}, alpha={self.alpha}"


def add_lora(module: nn.Module, targets: Sequence[str], rank: int, alpha: float, dropout: float = 0.0) -> list[str]:
    """Replace every ``nn.Linear`` of ``module`` whose name ends in one of ``targets`` (``qkv``, ``mlp.fc``) by a
    ``LoRALinear``; the names replaced. LoRAError naming the linear layers there are when a target matches none,
    and for a rank below 1 or above a layer's width."""
    if rank < 1:
        raise LoRAError(f"LoRA rank must be at least 1, got {rank}")
    linears = {name: m for name, m in module.named_modules() if type(m) is nn.Linear and name}
    leaves = sorted({".".join(n.split(".")[2:]) or n for n in linears})  # 'blocks.0.attn.qkv' -> 'attn.qkv'
    chosen: list[str] = []
    for target in targets:
        hits = [n for n in linears if n == target or n.endswith("." + target)]
        if not hits:
            raise LoRAError(f"LoRA target {target!r} matches no linear layer; the backbone's are "
                            f"{', '.join(leaves)}")
        chosen += [n for n in hits if n not in chosen]
    for name in chosen:
        base = linears[name]
        if rank > min(base.in_features, base.out_features):
            raise LoRAError(f"LoRA rank {rank} is larger than layer {name} ({base.in_features} -> "
                            f"{base.out_features}); expected at most {min(base.in_features, base.out_features)}")
    for name in sorted(chosen):
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, LoRALinear(linears[name], rank, alpha, dropout))
    return sorted(chosen)


@contextlib.contextmanager
def lora_disabled(module: nn.Module) -> Iterator[int]:
    """Within the block every ``LoRALinear`` of ``module`` computes its base layer alone (the pretrained function);
    yields how many there are. The adapters are untouched and come back on exit, also after an error."""
    layers = [m for m in module.modules() if isinstance(m, LoRALinear)]
    before = [m.enabled for m in layers]
    for m in layers:
        m.enabled = False
    try:
        yield len(layers)
    finally:
        for m, state in zip(layers, before, strict=True):
            m.enabled = state


def lora_layers(module: nn.Module) -> dict[str, LoRALinear]:
    """Every ``LoRALinear`` of ``module`` by its name there (``blocks.0.attn.qkv``)."""
    return {name: m for name, m in module.named_modules() if isinstance(m, LoRALinear)}


def lora_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters alone: ``<layer>.lora_A.weight`` and ``<layer>.lora_B.weight`` of every ``LoRALinear``."""
    return {k: v for k, v in module.state_dict().items() if ".lora_A." in k or ".lora_B." in k}


@torch.no_grad()
def merge_lora(module: nn.Module) -> int:
    """Fold every adapter into its base weight and put plain ``nn.Linear`` layers back; how many were merged."""
    merged = 0
    for name, layer in list(module.named_modules()):
        if isinstance(layer, LoRALinear):
            plain = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                              device=layer.weight.device, dtype=layer.weight.dtype)
            plain.weight.copy_(layer.weight + layer.delta().to(layer.weight.dtype))
            if layer.bias is not None:
                plain.bias.copy_(layer.bias)
            parent_name, _, child = name.rpartition(".")
            setattr(module.get_submodule(parent_name) if parent_name else module, child, plain)
            merged += 1
    return merged
