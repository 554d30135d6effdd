"""``registry_core.atomic.sha256_file``: the one file hash the lock, the label cache and text shards share."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from registry_core.atomic import sha256_file


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_sha256_of_a_file_in_any_block_size(tmp_path: Path, chunk: int) -> None:
    data = Path(hashlib.__file__).read_bytes()  # real bytes, many blocks long at the small sizes
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    assert sha256_file(path, chunk) == sha256_file(str(path)) == hashlib.sha256(data).hexdigest()


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "absent")
