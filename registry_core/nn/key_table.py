"""Checkpoint conversion as data: a table of (our key, their key, layout) rules that import and export share.

A key may hold ``{name}`` placeholders standing for a layer number (``backbone.blocks.{i}.attn.qkv.weight``
<-> ``h.{i}.attn.c_attn.weight``); each placeholder matches digits and carries over to the other side.
A rule may also say how their tensor's layout differs from ours: transposed (``transpose``), lacking a
size-1 dim (``fold``), or one of ``count`` pieces of ours along dim 0 (``part``: separate q, k, v against
a fused qkv). One table per foreign format (HF GPT-2, Prithvi V1 / V2, HF ViTMAE) and one loop
(``convert``) serve both directions, so a key can never be mapped one way on import and another on export.
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
    #: Their tensor lacks our dim ``fold``, of size 1 (a Conv2d patch projection against our Conv3d with a
    #: time kernel of 1): unsqueezed there on import, squeezed on export.
    fold: int | None = None
    #: ``(index, count)``: their tensor is piece ``index`` of ``count`` equal pieces of ours along dim 0
    #: (separate query / key / value against our fused ``qkv``): concatenated on import, split on export.
    part: tuple[int, int] | None = None
    _ours_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _theirs_re: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"key rule {self.ours!r} <-> {self.theirs!r}"
        if set(_PLACEHOLDER.findall(self.ours)) != set(_PLACEHOLDER.findall(self.theirs)):
            raise ValueError(f"{where}: both sides need the same placeholders")
        if self.part is not None:
            index, count = self.part
            if not (count >= 2 and 0 <= index < count):
                raise ValueError(f"{where}: part must be (index, count) with count >= 2 and 0 <= index < count, "
                                 f"got {self.part}")
            if self.pad_rows:
                raise ValueError(f"{where}: part and pad_rows do not combine (the pieces split our rows)")
        if self.fold is not None and self.fold < 0:
            raise ValueError(f"{where}: fold names a dim of our tensor counted from 0, got {self.fold}")
        object.__setattr__(self, "_ours_re", _compile(self.ours))
        object.__setattr__(self, "_theirs_re", _compile(self.theirs))

    def to_ours(self, value: torch.Tensor) -> torch.Tensor:
        """Their tensor (or piece) in our layout: transposed, then unsqueezed at ``fold``."""
        out = value.t() if self.transpose else value
        return out.unsqueeze(self.fold) if self.fold is not None else out

    def to_theirs(self, value: torch.Tensor, key: str) -> torch.Tensor:
        """Our tensor (or piece) in their layout: squeezed at ``fold`` (which must be of size 1), then transposed."""
        out = value
        if self.fold is not None:
            if out.dim() <= self.fold or out.shape[self.fold] != 1:
                raise ValueError(f"{key!r} is {tuple(value.shape)}; rule {self.theirs!r} drops its dim {self.fold}, "
                                 "which must be of size 1")
            out = out.squeeze(self.fold)
        return out.t() if self.transpose else out

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
    #: Source keys no rule matched (and no ``ignore`` pattern dropped), and pieces whose siblings are missing.
    unmatched: list[str]
    #: Destination keys made of pieces (``KeyRule.part``) that lack some: key -> the missing source keys.
    incomplete: dict[str, list[str]] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """One sentence per incomplete tensor, naming the pieces it lacks."""
        return [f"{dest} is made of pieces; missing {', '.join(missing)}" for dest, missing in self.incomplete.items()]


def _groups(rule: KeyRule, key: str, side: Literal["ours", "theirs"] = "theirs") -> dict[str, str]:
    """The placeholder values of ``key``, which matches ``rule`` on ``side``."""
    m = (rule._ours_re if side == "ours" else rule._theirs_re).match(key)
    return m.groupdict() if m is not None else {}


def _fill(pattern: str, groups: Mapping[str, str]) -> str:
    """``pattern`` with its placeholders replaced by ``groups``."""
    return _PLACEHOLDER.sub(lambda p: groups[p.group(1)], pattern)


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
    #: Our key pattern -> its piece rules in index order (from ``rules``).
    _pieces: dict[str, tuple[KeyRule, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Group the piece rules by our key; each group must be pieces 0..count-1 of one count."""
        groups: dict[str, list[KeyRule]] = {}
        for rule in self.rules:
            if rule.part is not None:
                groups.setdefault(rule.ours, []).append(rule)
        for ours, rules in groups.items():
            counts = {r.part[1] for r in rules if r.part is not None}
            indices = sorted(r.part[0] for r in rules if r.part is not None)
            if len(counts) != 1 or indices != list(range(next(iter(counts)))):
                raise ValueError(f"{self.name}: the pieces of {ours!r} must be parts 0..count-1 of one count, got "
                                 f"{[(r.theirs, r.part) for r in rules]}")
        ordered = {k: tuple(sorted(v, key=lambda r: r.part or (0, 0))) for k, v in groups.items()}
        object.__setattr__(self, "_pieces", ordered)

    def strip_prefix(self, key: str) -> str:
        """Their key without one of their optional prefixes."""
        for prefix in self.prefixes:
            if key.startswith(prefix):
                return key[len(prefix) :]
        return key

    def convert(self, tensors: Mapping[str, torch.Tensor], to: Literal["ours", "theirs"]) -> Converted:
        """Rename (and re-lay-out) ``tensors`` into naming ``to``; two sources of one key are an error.

        Pieces (``KeyRule.part``) are concatenated on import once all are there; a tensor lacking some is
        left out, its present pieces go to ``unmatched`` and the missing ones to ``incomplete``.
        """
        side: Literal["ours", "theirs"] = "theirs" if to == "ours" else "ours"
        out = Converted({}, {}, set(), [])
        pieces: dict[str, dict[int, tuple[str, torch.Tensor]]] = {}  # our key -> index -> (their key, ours-layout)
        piece_rule: dict[str, tuple[KeyRule, dict[str, str]]] = {}  # our key -> (a rule, its placeholder values)
        for raw_key, value in tensors.items():
            key = self.strip_prefix(raw_key) if side == "theirs" else raw_key
            if side == "theirs" and any(fnmatch.fnmatchcase(key, pat) for pat in self.ignore):
                continue
            for rule in self.rules:
                dest = rule.match(key, side)
                if dest is None:
                    continue
                if rule.part is not None:
                    if to == "theirs":
                        self._split(out, raw_key, value, rule)
                    else:
                        found = pieces.setdefault(dest, {})
                        index = rule.part[0]
                        if index in found:
                            raise ValueError(f"{self.name}: {raw_key!r} and {found[index][0]!r} are both piece {index} "
                                             f"of {dest!r}")
                        found[index] = (raw_key, rule.to_ours(value))
                        piece_rule[dest] = (rule, _groups(rule, key))
                    break
                if to == "theirs":
                    dest = self.export_prefix + dest
                self._put(out, dest, raw_key, rule.to_ours(value) if to == "ours" else rule.to_theirs(value, raw_key))
                if rule.pad_rows:
                    out.padded.add(dest)
                break
            else:
                out.unmatched.append(raw_key)
        for dest, found in pieces.items():
            rule, groups = piece_rule[dest]
            siblings = self._pieces[rule.ours]
            if len(found) == len(siblings):
                value = torch.cat([found[i][1] for i in range(len(siblings))], dim=0)
                self._put(out, dest, " + ".join(found[i][0] for i in range(len(siblings))), value)
                continue
            out.unmatched.extend(found[i][0] for i in sorted(found))
            out.incomplete[dest] = [_fill(r.theirs, groups) for r in siblings if r.part and r.part[0] not in found]
        return out

    def _put(self, out: Converted, dest: str, source: str, value: torch.Tensor) -> None:
        """Record one converted tensor; a second source of ``dest`` is an error naming both."""
        if dest in out.tensors:
            raise ValueError(f"{self.name}: {source!r} and {out.source_of[dest]!r} both map to {dest!r}")
        out.tensors[dest] = value
        out.source_of[dest] = source

    def _split(self, out: Converted, key: str, value: torch.Tensor, rule: KeyRule) -> None:
        """Export one of our tensors made of pieces: split along dim 0, each piece in their layout and name."""
        siblings = self._pieces[rule.ours]
        count = len(siblings)
        if value.dim() == 0 or value.shape[0] % count:
            raise ValueError(f"{self.name}: {key!r} is {tuple(value.shape)}; its dim 0 must split into {count} "
                             f"equal pieces ({', '.join(r.theirs for r in siblings)})")
        groups = _groups(rule, key, side="ours")
        for piece, sibling in zip(value.chunk(count, dim=0), siblings):
            self._put(out, self.export_prefix + _fill(sibling.theirs, groups), key, sibling.to_theirs(piece, key))

    def theirs_for(self, ours: str) -> str | None:
        """Their key for one of ours (for messages; pieces joined by `` + ``), or None when no rule covers it."""
        for rule in self.rules:
            dest = rule.match(ours, "ours")
            if dest is None:
                continue
            if rule.part is None:
                return dest
            groups = _groups(rule, ours, side="ours")
            return " + ".join(_fill(r.theirs, groups) for r in self._pieces[rule.ours])
        return None

    @staticmethod
    def layered(ours: str, theirs: str, names: Iterable[tuple[str, str, bool]]) -> tuple[KeyRule, ...]:
        """Rules for each ``(our suffix, their suffix, transpose)`` under two per-layer prefixes."""
        return tuple(KeyRule(ours + a, theirs + b, t) for a, b, t in names)
