"""``text-run``: the token embedding, positional encoder and backbone a text run of ours trained, loaded into a new
pipeline (a classifier finetuned from ``runs/gpt-tiny``). The run folder is untrusted input: only its
``model.safetensors`` is read (no pickle), from inside the folder."""

from __future__ import annotations

from pathlib import Path

from registry_core import FileFormatError
from registry_core.atomic import file_inside
from registry_core.interfaces import ModelParts
from registry_core.nn.load_parts import load_run_tensors
from registry_llm.weights.specs import TextRunConfig

#: A LoRA run's adapters and head (registry_llm.objectives.classify.ADAPTERS_FILE).
ADAPTERS_FILE = "adapters.safetensors"

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
        """The run's weights (and the adapters', when given), whose hashes go into the lock."""
        listed = [file_inside(self.path, "model.safetensors")]
        if self.config.adapters is not None:
            listed.append(file_inside(Path(self.config.adapters), ADAPTERS_FILE))
        return listed

    def load_into(self, parts: ModelParts) -> None:
        """Copy the run's embedding, positions and backbone into ``parts``; a misfit names the tensors."""
        load_run_tensors(parts, self.path, ENCODER_PREFIXES, self.fills, "text-run")
        if self.config.adapters is not None:
            self._load_adapters(parts, file_inside(Path(self.config.adapters), ADAPTERS_FILE))

    @staticmethod
    def _load_adapters(parts: ModelParts, file: Path) -> None:
        """The adapters and head of a LoRA run onto this model; FileFormatError naming both shapes on a misfit."""
        import torch
        from safetensors.torch import load_file

        from registry_core.nn.load_parts import part_tensors

        try:
            tensors = load_file(str(file))
        except Exception as exc:
            raise FileFormatError(f"text-run: {file} is not a readable safetensors file: {exc}") from exc
        model = part_tensors(parts)
        problems = []
        for key, src in tensors.items():
            dest = model.get(key)
            if dest is None:
                problems.append(f"{key} is not in this model (is it built with the same train = 'lora' and targets?)")
            elif tuple(dest.shape) != tuple(src.shape):
                problems.append(f"{key} is {tuple(src.shape)} there, {tuple(dest.shape)} here")
        if problems:
            raise FileFormatError(f"text-run: the adapters in {file} do not fit this model: {'; '.join(problems[:4])}"
                                  + (f" and {len(problems) - 4} more" if len(problems) > 4 else ""))
        with torch.no_grad():
            for key, src in tensors.items():
                model[key].copy_(src)


def build(config: TextRunConfig) -> TextRunWeights:
    return TextRunWeights(config)
