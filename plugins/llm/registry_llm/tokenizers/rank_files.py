"""Reading and writing tiktoken-format rank files, and turning ranks into BPE vocab + merges.

A ``.tiktoken`` file has one ``base64(token bytes) rank`` pair per line; the rank is the token id and the
merge priority. Hugging Face's byte-level BPE wants a vocabulary of byte-level *strings* and an ordered
list of merges, so each multi-byte token is split back into the two parts that rank-order BPE would
join last.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from registry_core import FileFormatError

__all__ = ["byte_to_unicode", "ranks_to_vocab_merges", "read_rank_file", "write_rank_file"]


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level BPE vocabularies.

    Printable Latin-1 bytes stand for themselves; the other 68 bytes are moved to code points 256+.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table: dict[int, str] = {b: chr(b) for b in keep}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


def _as_unicode(token: bytes) -> str:
    table = byte_to_unicode()
    return "".join(table[b] for b in token)


def read_rank_file(path: Path) -> dict[bytes, int]:
    """Parse a ``.tiktoken`` rank file; errors name the file and line."""
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            parts = line.split()
            try:
                if len(parts) != 2:
                    raise ValueError("expected two fields")
                token, rank = base64.b64decode(parts[0], validate=True), int(parts[1])
            except ValueError as exc:
                raise FileFormatError(
                    f"{path}:{lineno}: not a tiktoken rank line (expected 'base64-token rank'): {exc}"
                ) from None
            ranks[token] = rank
    if not ranks:
        raise FileFormatError(f"{path}: the rank file holds no tokens")
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise FileFormatError(f"{path}: byte-level rank files must rank all 256 single bytes; missing {missing[:8]}")
    return ranks


def write_rank_file(ranks: Mapping[bytes, int], path: Path) -> None:
    """Write ``ranks`` as a ``.tiktoken`` file, sorted by rank."""
    ordered = sorted(ranks.items(), key=lambda kv: kv[1])
    lines = [f"{base64.b64encode(tok).decode('ascii')} {rank}\n" for tok, rank in ordered]
    Path(path).write_text("".join(lines), encoding="ascii")


def _last_merge(token: bytes, ranks: Mapping[bytes, int], limit: int) -> tuple[bytes, bytes]:
    """The two parts rank-order BPE holds just before it forms ``token`` (only ranks < limit may merge)."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, best_rank = -1, limit
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best_rank:
                best, best_rank = i, r
        if best < 0:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    if len(parts) != 2:
        raise ValueError(f"token {token!r} (rank {limit}) cannot be built from lower-ranked tokens")
    return parts[0], parts[1]


def ranks_to_vocab_merges(ranks: Mapping[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level vocabulary (string -> id) and merges in priority order for ``tokenizers.models.BPE``."""
    vocab = {_as_unicode(tok): rank for tok, rank in ranks.items()}
    merges = []
    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) > 1:
            left, right = _last_merge(tok, ranks, rank)
            merges.append((_as_unicode(left), _as_unicode(right)))
    return vocab, merges
