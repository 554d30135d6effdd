"""``text-run``: the token embedding, positional encoder and backbone a text run of ours trained, loaded into a new
pipeline (a classifier finetuned from ``runs/gpt-tiny``). The run folder is untrusted input: only its
``model.safetensors`` is read (no pickle), from inside the folder."""

from __future__ import annotations

from pathlib import Path

from registry_core import FileFormatError
from registry_core.atomic import file_inside
from registry_core.interfaces import ModelParts
from registry_core.nn.load_parts import load_parts
from registry_llm.weights.specs import TextRunConfig

__all__ = ["TextRunWeights", "build"]

#: Our part names whose tensors the run provides.
ENCODER_PREFIXES = ("embed.", "positional.", "backbone.")


class TextRunWeights:
    """A finished text run as pretrained weights: ``meta``, ``fills``, ``files()``, ``load_into``."""

    def __init__(self, config: TextRunConfig) -> None:
        self.config = config
        self.path = Path(config.path)
        self.fills: tuple[str, ...] = ("encoder",)
        self.meta = {"run": str(self.path)}

    def files(self) -> list[Path]:
        """The run's weights, whose hash goes into the lock."""
        return [file_inside(self.path, "model.safetensors")]

    def load_into(self, parts: ModelParts) -> None:
        """Copy the run's embedding, positions and backbone into ``parts``; a misfit names the tensors."""
        from safetensors.torch import load_file

        file = file_inside(self.path, "model.safetensors")
        try:
            every = load_file(str(file))
        except Exception as exc:  # safetensors raises its own error types for a corrupt header
            raise FileFormatError(f"text-run: {file} is not a readable safetensors file: {exc}") from exc
        load_parts(parts, {k: v for k, v in every.items() if k.startswith(ENCODER_PREFIXES)}, fills=self.fills,
                   source=str(file))


def build(config: TextRunConfig) -> TextRunWeights:
    return TextRunWeights(config)
