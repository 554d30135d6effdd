"""Token shard files: ``.bin`` (token ids, uint16 or uint32), ``.idx`` (document offsets), ``manifest.json``.

A build writes its shards into a fresh folder ``out/build-<id>/`` and then replaces ``manifest.json``
atomically; the manifest names the shards it belongs to, so a failed or half-done build never touches
what an earlier build left readable.

``.idx`` holds ``n_documents + 1`` little-endian uint64 token offsets: document ``d`` spans tokens
``idx[d]:idx[d+1]`` of its ``.bin``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry_core import RegistryCoreError
from registry_core.atomic import mark_output, output_kind, remove_output, remove_written, sha256_file

__all__ = [
    "BUILD_KIND",
    "MANIFEST",
    "ShardError",
    "ShardInfo",
    "ShardWriter",
    "dtype_for_vocab",
    "read_manifest",
    "remove_stale_builds",
    "verify_shards",
]

#: The output kind a shard build folder is marked with: only such a folder is swept as a stale build.
BUILD_KIND = "shard-build"

MANIFEST = "manifest.json"
FORMAT = "registry-llm/text-shards"
FORMAT_VERSION = 1
_CHUNK = 1 << 20
#: How a damaged build is repaired (``run`` prepares the data before it trains).
_REBUILD = "prepare() rebuilds it (`python -m registry_core run` calls prepare() first)"


class ShardError(RegistryCoreError, ValueError):
    """A shard or manifest does not match what was recorded; the message names the file."""


def dtype_for_vocab(vocab_size: int) -> np.dtype[Any]:
    """uint16 while every id fits (vocabulary < 65536), else uint32."""
    return np.dtype(np.uint16 if vocab_size < (1 << 16) else np.uint32)


@dataclass(frozen=True)
class ShardInfo:
    """One shard as the manifest records it (paths relative to the output folder)."""

    bin: str
    idx: str
    n_tokens: int
    n_documents: int
    sha256: str
    idx_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ShardWriter:
    """Appends whole documents to ``shard_NNNNN.bin`` files, starting a new one past ``shard_tokens``."""

    def __init__(self, out: Path, build: str, dtype: np.dtype[Any], shard_tokens: int) -> None:
        self.out, self.build, self.dtype, self.shard_tokens = out, build, dtype, shard_tokens
        (out / build).mkdir(parents=True, exist_ok=False)
        mark_output(out / build, BUILD_KIND)  # only a marked build is ever swept as stale
        self.shards: list[ShardInfo] = []
        self._fh: Any = None
        self._hash: Any = None
        self._offsets: list[int] = [0]

    def _rel(self, name: str) -> str:
        return f"{self.build}/{name}"

    def _open(self) -> None:
        name = self._rel(f"shard_{len(self.shards):05d}.bin")
        self._fh = open(self.out / name, "wb", buffering=_CHUNK)  # noqa: SIM115 (closed in _close/abort)
        self._hash = hashlib.sha256()
        self._offsets = [0]

    def add(self, ids: np.ndarray) -> None:
        """Write one document's ids (already of the shard dtype)."""
        if self._fh is None:
            self._open()
        data = ids.astype(self.dtype, copy=False).tobytes()
        self._fh.write(data)
        self._hash.update(data)
        self._offsets.append(self._offsets[-1] + len(ids))
        if self._offsets[-1] >= self.shard_tokens:
            self._close()

    def _close(self) -> None:
        fh, self._fh = self._fh, None
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        base = Path(fh.name).name[: -len(".bin")]
        idx = np.asarray(self._offsets, dtype="<u8").tobytes()
        idx_name = self._rel(base + ".idx")
        with open(self.out / idx_name, "wb") as ih:
            ih.write(idx)
            ih.flush()
            os.fsync(ih.fileno())
        self.shards.append(
            ShardInfo(
                bin=self._rel(base + ".bin"),
                idx=idx_name,
                n_tokens=self._offsets[-1],
                n_documents=len(self._offsets) - 1,
                sha256=self._hash.hexdigest(),
                idx_sha256=hashlib.sha256(idx).hexdigest(),
            )
        )

    def finish(self) -> list[ShardInfo]:
        if self._fh is not None:
            self._close()
        return self.shards

    def abort(self) -> None:
        """Remove this build's folder (on any error before the manifest is written)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        remove_written(self.out / self.build)


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of shard folder ``out``; clear errors when it is missing or not ours."""
    path = out / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {out}: run prepare() on the text-shards data source first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ShardError(f"{path} is not readable JSON ({exc}); {_REBUILD}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ShardError(f"{path} is not a {FORMAT} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise ShardError(f"{path} has format version {manifest.get('version')}, expected {FORMAT_VERSION}")
    return manifest


def verify_shards(out: Path, manifest: dict[str, Any], checksums: bool = True) -> list[ShardInfo]:
    """Check every shard's length (always) and sha256 (when ``checksums``) against the manifest."""
    itemsize = np.dtype(manifest["dtype"]).itemsize
    shards = [ShardInfo(**s) for s in manifest["shards"]]
    for s in shards:
        for rel, size, want in (
            (s.bin, s.n_tokens * itemsize, s.sha256),
            (s.idx, (s.n_documents + 1) * 8, s.idx_sha256),
        ):
            path = out / rel
            if not path.is_file():
                raise ShardError(f"shard file {path} listed in {out / MANIFEST} is missing; {_REBUILD}")
            got = path.stat().st_size
            if got != size:
                raise ShardError(
                    f"shard {path} is {got} bytes but the manifest records {size} "
                    f"({'tokens' if rel == s.bin else 'document offsets'}); it is truncated or corrupt, "
                    f"{_REBUILD}"
                )
            if checksums and sha256_file(path, _CHUNK) != want:
                raise ShardError(
                    f"shard {path} does not match its sha256 in {out / MANIFEST} (corrupt); {_REBUILD}"
                )
    return shards


def remove_stale_builds(out: Path, keep: str | None) -> None:
    """Delete ``build-*`` folders other than ``keep`` that a build of ours left (replaced or failed builds); a
    folder of that name without our marker (a user's) is left as it is."""
    for d in out.glob("build-*"):
        if d.name != keep and output_kind(d) == BUILD_KIND:
            remove_output(d, BUILD_KIND)
