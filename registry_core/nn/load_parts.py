"""Load a checkpoint into the whole built model, part group by part group, with every key checked.

The model's tensors are named as in the pipeline's ``model.safetensors`` (``embed.weight``,
``backbone.blocks.0.ln1.weight``, ``objective.decoder.0.weight``, ``head.proj.bias``); each part belongs to
a group of ``PART_GROUPS`` (encoder, decoder, head). A checkpoint fills some groups: every tensor of
those groups must be in it (missing keys are errors), every key in it must be a tensor of the model
(unexpected keys are errors), and keys of groups it does not fill are skipped, so an encoder + decoder
checkpoint loads into a finetuning model that only wants the encoder. All checks run before any copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from registry_core._errors import FileFormatError, RegistryCoreError
from registry_core.interfaces import PART_GROUPS, ModelParts
from registry_core.nn.key_table import KeyTable

__all__ = ["CheckpointError", "LoadReport", "key_listing", "load_parts", "load_run_tensors", "part_tensors"]

_SHOWN = 8  # keys listed per problem before "and N more"


class CheckpointError(RegistryCoreError, ValueError):
    """A checkpoint does not fit the model: the message names every missing, unexpected or misshapen key."""


@dataclass
class LoadReport:
    """What :func:`load_parts` did: our keys copied, and checkpoint keys skipped (groups not filled)."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def group_of(key: str) -> str | None:
    """The part group of one of our tensor names (``backbone.x`` -> ``encoder``)."""
    return PART_GROUPS.get(key.partition(".")[0])


def part_tensors(parts: ModelParts, groups: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """Every parameter and persistent buffer of the parts (of ``groups`` only, when given), by our name."""
    wanted = None if groups is None else set(groups)
    out: dict[str, torch.Tensor] = {}
    for name, module in parts.named().items():
        if not isinstance(module, nn.Module) or (wanted is not None and PART_GROUPS.get(name) not in wanted):
            continue
        for key, tensor in module.state_dict(keep_vars=True).items():
            out[f"{name}.{key}"] = tensor
    return out


def key_listing(keys: list[str]) -> str:
    """The first keys of a problem, comma-separated, then "and N more": what every checkpoint error lists."""
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")


def load_parts(
    parts: ModelParts,
    checkpoint: Mapping[str, torch.Tensor],
    *,
    fills: Iterable[str] = ("encoder",),
    table: KeyTable | None = None,
    source: str = "checkpoint",
) -> LoadReport:
    """Copy ``checkpoint`` (their naming when ``table`` is given, else ours) into ``parts``.

    ``fills`` names the groups the checkpoint provides; ``source`` (a path) starts every error message.
    """
    groups = tuple(fills)
    unknown = sorted(set(groups) - set(PART_GROUPS.values()))
    if unknown:
        raise ValueError(f"{source}: unknown part group(s) {unknown}; expected some of {sorted(set(PART_GROUPS.values()))}")
    pieces: list[str] = []
    if table is not None:
        converted = table.convert(checkpoint, "ours")
        tensors, source_of, padded = converted.tensors, converted.source_of, converted.padded
        unexpected = list(converted.unmatched)
        pieces = converted.problems()
    else:
        tensors, source_of, padded, unexpected = dict(checkpoint), {}, set(), []

    def named(key: str) -> str:  # our key, with theirs where a table maps it
        theirs = source_of.get(key) or (table.theirs_for(key) if table is not None else None)
        return f"{key} ({theirs})" if theirs and theirs != key else key

    model = part_tensors(parts)
    report = LoadReport()
    misshapen: list[str] = []
    plan: list[tuple[torch.Tensor, torch.Tensor]] = []
    for key, src in tensors.items():
        dest = model.get(key)
        if dest is None:
            unexpected.append(named(key))
            continue
        if group_of(key) not in groups:
            report.skipped.append(key)
            continue
        fits = tuple(src.shape) == tuple(dest.shape) or (
            key in padded and src.dim() == dest.dim() and src.shape[0] <= dest.shape[0] and src.shape[1:] == dest.shape[1:]
        )
        if not fits:
            misshapen.append(f"{named(key)} is {tuple(src.shape)}, the model's is {tuple(dest.shape)}")
            continue
        plan.append((dest, src))
        report.loaded.append(key)
    # Adapters added for finetuning (LoRA's lora_A / lora_B) start fresh: a base checkpoint never holds them.
    missing = [named(k) for k in model if group_of(k) in groups and k not in tensors and not _is_adapter(k)]
    problems = _fit_problems(pieces, missing, unexpected, misshapen, groups)
    if problems:
        raise CheckpointError(f"{source} does not fit the model: " + "; ".join(problems))
    _copy(plan)
    return report


def _is_adapter(key: str) -> bool:
    return ".lora_A." in key or ".lora_B." in key


def _fit_problems(pieces: list[str], missing: list[str], unexpected: list[str], misshapen: list[str],
                  groups: tuple[str, ...]) -> list[str]:
    """Each way a checkpoint does not fit the model, in words with the first keys."""
    problems = [f"{len(pieces)} fused tensor(s) lack pieces: {key_listing(pieces)}"] if pieces else []
    if missing:
        problems.append(f"{len(missing)} tensor(s) of the model's {' + '.join(groups)} are missing: {key_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s) that the model lacks: {key_listing(unexpected)}")
    if misshapen:
        problems.append(f"{len(misshapen)} tensor(s) of another shape: {key_listing(misshapen)}")
    return problems


def _copy(plan: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Copy each source into its destination; rows past a shorter source (a padded vocabulary) become zeros."""
    with torch.no_grad():
        for dest, src in plan:
            rows = src.shape[0] if src.dim() else 0
            if src.dim() and rows < dest.shape[0]:
                dest[:rows].copy_(src)
                dest[rows:].zero_()  # rows past their table (padding of a vocabulary): never real entries
            else:
                dest.copy_(src)


def load_run_tensors(parts: Any, path: str | Path, prefixes: tuple[str, ...], fills: tuple[str, ...],
                     who: str) -> None:
    """Copy the tensors of run ``path`` whose names start with ``prefixes`` (``"backbone."``) into ``parts``;
    ``who`` (the loader's name) starts the message of a file that is not safetensors; a misfit names the keys."""
    from safetensors.torch import load_file

    from registry_core.atomic import file_inside
    from registry_core.runs import RUN_WEIGHTS

    file = file_inside(Path(path), RUN_WEIGHTS)
    try:
        every = load_file(str(file))
    except Exception as exc:  # safetensors raises its own error types for a corrupt header
        raise FileFormatError(f"{who}: {file} is not a readable safetensors file: {exc}") from exc
    load_parts(parts, {k: v for k, v in every.items() if k.startswith(prefixes)}, fills=fills, source=str(file))
