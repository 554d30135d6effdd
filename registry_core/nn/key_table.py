"""Checkpoint conversion as data: a table of (our key, their key, transpose) rules that import and export share.

A key may hold ``{name}`` placeholders standing for a layer number (``backbone.blocks.{i}.attn.qkv.weight``
<-> ``h.{i}.attn.c_attn.weight``); each placeholder matches digits and carries over to the other side.
One table per foreign format (HF GPT-2, Prithvi V1, Prithvi V2) and one loop (``convert``) serve both
directions, so a key can never be mapped one way on import and another on export.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch

__all__ = ["Converted", "KeyRule", "KeyTable"]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _compile(pattern: str) -> re.Pattern[str]:
    """``a.{i}.b`` -> ``^a\\.(?P<i>\\d+)\\.b$``."""
    out, last = [], 0
    for m in _PLACEHOLDER.finditer(pattern):
        out.append(re.escape(pattern[last : m.start()]))
        out.append(f"(?P<{m.group(1)}>\\d+)")
        last = m.end()
    out.append(re.escape(pattern[last:]))
    return re.compile("^" + "".join(out) + "$")


@dataclass(frozen=True)
class KeyRule:
    """One tensor in both namings; ``transpose`` swaps the two dims of a 2-d weight (Conv1D vs Linear)."""

    ours: str
    theirs: str
    transpose: bool = False
    #: Their table may have fewer rows than ours (a vocabulary padded for speed): on import it fills our
    #: first rows and the rest are zeroed.
    pad_rows: bool = False
    _ours_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _theirs_re: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if set(_PLACEHOLDER.findall(self.ours)) != set(_PLACEHOLDER.findall(self.theirs)):
            raise ValueError(f"key rule {self.ours!r} <-> {self.theirs!r}: both sides need the same placeholders")
        object.__setattr__(self, "_ours_re", _compile(self.ours))
        object.__setattr__(self, "_theirs_re", _compile(self.theirs))

    def match(self, key: str, side: Literal["ours", "theirs"]) -> str | None:
        """The key on the other side when ``key`` matches this rule's ``side``, else None."""
        m = (self._ours_re if side == "ours" else self._theirs_re).match(key)
        if m is None:
            return None
        other = self.theirs if side == "ours" else self.ours
        return _PLACEHOLDER.sub(lambda p: m.group(p.group(1)), other)


@dataclass
class Converted:
    """The result of :meth:`KeyTable.convert`: tensors in the other naming and what did not map."""

    tensors: dict[str, torch.Tensor]
    #: Destination key -> source key, for messages that name both.
    source_of: dict[str, str]
    #: Destination keys whose rule says ``pad_rows``.
    padded: set[str]
    #: Source keys no rule matched (and no ``ignore`` pattern dropped).
    unmatched: list[str]


@dataclass(frozen=True)
class KeyTable:
    """Every tensor of a foreign checkpoint format, in our naming and in theirs.

    ``ignore`` lists their keys (fnmatch patterns) that hold nothing we load, e.g. GPT-2's cached causal
    mask ``h.*.attn.bias``; ``prefixes`` are their optional key prefixes (``transformer.``), stripped on
    import; ``export_prefix`` is put back on export.
    """

    name: str
    rules: tuple[KeyRule, ...]
    ignore: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    export_prefix: str = ""

    def strip_prefix(self, key: str) -> str:
        """Their key without one of their optional prefixes."""
        for prefix in self.prefixes:
            if key.startswith(prefix):
                return key[len(prefix) :]
        return key

    def convert(self, tensors: Mapping[str, torch.Tensor], to: Literal["ours", "theirs"]) -> Converted:
        """Rename (and transpose) ``tensors`` into naming ``to``; two sources of one key are an error."""
        side: Literal["ours", "theirs"] = "theirs" if to == "ours" else "ours"
        out = Converted({}, {}, set(), [])
        for raw_key, value in tensors.items():
            key = self.strip_prefix(raw_key) if side == "theirs" else raw_key
            if side == "theirs" and any(fnmatch.fnmatchcase(key, pat) for pat in self.ignore):
                continue
            for rule in self.rules:
                dest = rule.match(key, side)
                if dest is None:
                    continue
                if to == "theirs":
                    dest = self.export_prefix + dest
                if dest in out.tensors:
                    raise ValueError(f"{self.name}: {raw_key!r} and {out.source_of[dest]!r} both map to {dest!r}")
                out.tensors[dest] = value.t() if rule.transpose else value
                out.source_of[dest] = raw_key
                if rule.pad_rows:
                    out.padded.add(dest)
                break
            else:
                out.unmatched.append(raw_key)
        return out

    def theirs_for(self, ours: str) -> str | None:
        """Their key for one of ours (for messages), or None when no rule covers it."""
        for rule in self.rules:
            dest = rule.match(ours, "ours")
            if dest is not None:
                return dest
        return None

    @staticmethod
    def layered(ours: str, theirs: str, names: Iterable[tuple[str, str, bool]]) -> tuple[KeyRule, ...]:
        """Rules for each ``(our suffix, their suffix, transpose)`` under two per-layer prefixes."""
        return tuple(KeyRule(ours + a, theirs + b, t) for a, b, t in names)
