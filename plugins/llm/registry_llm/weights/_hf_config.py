"""What the Hugging Face formats share: a folder's ``config.json`` read and checked, and their activation names."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from registry_core.choices import Activation

__all__ = ["CONFIG_FILE", "HF_ACTIVATIONS", "hf_activation_name", "read_hf_config"]

CONFIG_FILE: Final = "config.json"
#: Hugging Face's activation names (``activation_function``, ``hidden_act``) and ours; for each of ours the first
#: name listed is the one an export writes.
HF_ACTIVATIONS: Final[dict[str, Activation]] = {"gelu_new": "gelu-tanh", "gelu_pytorch_tanh": "gelu-tanh",
                                                "gelu": "gelu", "relu": "relu", "silu": "silu", "swish": "silu"}


def hf_activation_name(ours: str) -> str:
    """The Hugging Face name an export writes for our activation."""
    return next(theirs for theirs, o in HF_ACTIVATIONS.items() if o == ours)


def read_hf_config(folder: Path, *, who: str, family: str, model_type: str, ints: Sequence[str],
                   activation_key: str, activation_default: str) -> dict[str, Any]:
    """``folder``'s config.json, checked: valid JSON, of ``model_type``, with integer ``ints`` and an activation we
    have; every error names the file and starts with ``who`` (``hf-gpt2``)."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{who}: {path} is missing; expected a Hugging Face {family} folder with {CONFIG_FILE}")
    try:
        cfg: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{who}: {path} is not valid JSON: {exc}") from None
    if cfg.get("model_type", model_type) != model_type:
        raise ValueError(f"{who}: {path} has model_type {cfg.get('model_type')!r}, expected {model_type!r}")
    for key in ints:
        if not isinstance(cfg.get(key), int):
            raise ValueError(f"{who}: {path} lacks integer {key!r}")
    act = cfg.get(activation_key, activation_default)
    if act not in HF_ACTIVATIONS:
        raise ValueError(f"{who}: {path} has {activation_key} {act!r}; supported: {', '.join(HF_ACTIVATIONS)}")
    return cfg
