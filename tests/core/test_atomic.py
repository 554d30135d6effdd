"""``registry_core.atomic``: the one file hash, and the folder swaps every writer of a folder uses."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from registry_core.atomic import move_dir_into_place, replace_dir, sha256_file


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


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_replace_dir_swaps_a_folder_and_leaves_nothing_aside(tmp_path: Path) -> None:
    out, new = tmp_path / "out", tmp_path / ".out.tmp"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "old.txt").write_text("old")
    new.mkdir()
    (new / "index.html").write_text("new")
    replace_dir(new, out)
    assert _tree(out) == {"index.html": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no .out.old-* left, tmp consumed
    other = tmp_path / ".other"
    other.mkdir()
    (other / "a").write_text("a")
    replace_dir(other, tmp_path / "fresh")  # nothing there yet
    assert _tree(tmp_path / "fresh") == {"a": "a"}


def test_replace_dir_replaces_a_link_not_its_target(tmp_path: Path) -> None:
    target = tmp_path / "kept"
    target.mkdir()
    (target / "data").write_text("user's")
    link = tmp_path / "link"
    link.symlink_to(target)
    new = tmp_path / ".new"
    new.mkdir()
    (new / "x").write_text("ours")
    replace_dir(new, link)
    assert not link.is_symlink() and _tree(link) == {"x": "ours"}
    assert _tree(target) == {"data": "user's"}


def test_replace_dir_puts_a_file_over_a_file_never_over_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "map.tif"
    out.mkdir()
    (out / "user's").write_text("u")
    staged = tmp_path / ".map.tif.tmp"
    staged.write_text("raster")
    with pytest.raises(OSError):
        replace_dir(staged, out)  # a folder named like the output is not replaced by a file
    assert _tree(out) == {"user's": "u"}
    (out / "user's").unlink()
    out.rmdir()
    out.write_text("raster 1")
    replace_dir(staged, out)
    assert out.read_text() == "raster" and sorted(p.name for p in tmp_path.iterdir()) == ["map.tif"]


def test_a_failed_swap_restores_the_old_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("k")
    with pytest.raises(FileNotFoundError):
        replace_dir(tmp_path / "missing-but-a-folder", out)  # not there: the swap's rename fails
    assert _tree(out) == {"keep": "k"} and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_move_dir_into_place_never_replaces_a_full_folder(tmp_path: Path) -> None:
    won = tmp_path / "store.zarr"
    won.mkdir()
    (won / "zarr.json").write_text("{}")
    mine = tmp_path / ".store.zarr.tmp"
    mine.mkdir()
    (mine / "zarr.json").write_text('{"mine": 1}')
    with pytest.raises(OSError):
        move_dir_into_place(mine, won)
    assert _tree(won) == {"zarr.json": "{}"}
    move_dir_into_place(mine, tmp_path / "free.zarr")
    assert _tree(tmp_path / "free.zarr") == {"zarr.json": '{"mine": 1}'}
