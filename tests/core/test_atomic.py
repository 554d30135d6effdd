"""``registry_core.atomic``: the one file hash, and the folder swaps every writer of a folder uses."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from registry_core import OutputPathError
from registry_core.atomic import (
    OUTPUT_MARKER,
    mark_output,
    move_dir_into_place,
    output_kind,
    remove_output,
    replace_dir,
    sha256_file,
    writer_lock,
)


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
    mark_output(out, "report")
    new.mkdir()
    (new / "index.html").write_text("new")
    replace_dir(new, out, kind="report")
    assert _tree(out) == {"index.html": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no .out.old-* left, tmp consumed
    other = tmp_path / ".other"
    other.mkdir()
    (other / "a").write_text("a")
    replace_dir(other, tmp_path / "fresh", kind="report")  # nothing there yet
    assert _tree(tmp_path / "fresh") == {"a": "a"}


def test_replace_dir_replaces_no_link_and_nothing_unmarked(tmp_path: Path) -> None:
    target = tmp_path / "kept"
    target.mkdir()
    (target / "data").write_text("user's")
    mark_output(target, "report")  # even a folder of ours is not replaced through a link
    link = tmp_path / "link"
    link.symlink_to(target)
    new = tmp_path / ".new"
    new.mkdir()
    (new / "x").write_text("ours")
    with pytest.raises(OutputPathError, match="is a symbolic link"):
        replace_dir(new, link, kind="report")
    with pytest.raises(OutputPathError, match="is a report output, so it was not written as a predict output"):
        replace_dir(new, target, kind="predict")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("a user's site")
    with pytest.raises(OutputPathError, match="carries no registry-core marker"):
        replace_dir(new, tmp_path / "site", kind="report")
    assert link.is_symlink() and _tree(target) == {"data": "user's", OUTPUT_MARKER: (target / OUTPUT_MARKER).read_text()}
    assert _tree(tmp_path / "site") == {"index.html": "a user's site"} and _tree(new) == {"x": "ours"}


def test_replace_dir_puts_a_file_over_a_file_never_over_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "map.tif"
    out.mkdir()
    (out / "user's").write_text("u")
    staged = tmp_path / ".map.tif.tmp"
    staged.write_text("raster")
    with pytest.raises(OSError):
        replace_dir(staged, out, kind="predict")  # a folder named like the output is not replaced by a file
    assert _tree(out) == {"user's": "u"}
    (out / "user's").unlink()
    out.rmdir()
    out.write_text("raster 1")
    replace_dir(staged, out, kind="predict", marked=lambda path: "predict")  # (a tag inside says so)
    assert out.read_text() == "raster" and sorted(p.name for p in tmp_path.iterdir()) == ["map.tif"]


def test_a_failed_swap_restores_the_old_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("k")
    mark_output(out, "report")
    with pytest.raises(FileNotFoundError):
        replace_dir(tmp_path / "missing-but-a-folder", out, kind="report")  # not there: the swap's rename fails
    assert set(_tree(out)) == {"keep", OUTPUT_MARKER} and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


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


def _decoy(folder: Path) -> Path:
    """A folder with a user's files and, as in a run folder, a checkpoints/ folder."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / ".bashrc").write_text("user's")
    return folder


def test_remove_output_removes_a_marked_folder_of_its_kind(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    mark_output(run, "run")
    (run / "elsewhere").symlink_to(_decoy(tmp_path / "decoy"), target_is_directory=True)
    assert output_kind(run) == "run"
    remove_output(run, "run")
    assert not run.exists() and (tmp_path / "decoy" / ".bashrc").read_text() == "user's"  # a link inside: not followed
    remove_output(run, "run")  # nothing there: nothing to do
    (tmp_path / "empty").mkdir()
    remove_output(tmp_path / "empty", "run")  # an empty folder holds nothing to lose
    assert not (tmp_path / "empty").exists()


@pytest.mark.parametrize(("setup", "message"), [
    (lambda root: _decoy(root / "home-like"), "carries no registry-core marker"),
    (lambda root: root / "link", "is a symbolic link"),
    (lambda root: root, "is the working folder"),
    (lambda root: root.parent, "a folder above the working folder"),
    (lambda root: Path.home(), "the home folder"),
    (lambda root: Path("/"), "the filesystem root"),
    (lambda root: root / "marked-report", "is a report output, so it was not written as a run output"),
    (lambda root: root / "marked-run-with-input", "is or holds"),
    (lambda root: root / "bad-marker", "carries no registry-core marker"),
])
def test_remove_output_refuses_what_is_not_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup,
                                                message: str) -> None:
    monkeypatch.chdir(tmp_path)
    real = _decoy(tmp_path / "real")
    mark_output(real, "run")
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    (tmp_path / "marked-report").mkdir()
    mark_output(tmp_path / "marked-report", "report")
    (tmp_path / "marked-run-with-input" / "data").mkdir(parents=True)
    mark_output(tmp_path / "marked-run-with-input", "run")
    (tmp_path / "bad-marker").mkdir()
    (tmp_path / "bad-marker" / OUTPUT_MARKER).write_text('{"kind": "run"}')  # not written by us
    target = setup(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(OutputPathError, match=message):
        remove_output(target, "run", inputs=[tmp_path / "marked-run-with-input" / "data" / "cube.zarr"])
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_only_atomic_removes_files() -> None:
    """Every removal goes through registry_core.atomic; the call sites that remove are listed here."""
    import ast

    import registry_core
    import registry_gfm
    import registry_llm

    roots = [Path(m.__file__).parent for m in (registry_core, registry_llm, registry_gfm)]
    raw, calls = [], []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            where = path.relative_to(root.parent).as_posix()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                owner = getattr(getattr(node.func, "value", None), "id", "")
                removes = name in ("rmtree", "unlink", "rmdir") or (owner == "os" and name in ("remove", "removedirs"))
                if removes and where != "registry_core/atomic.py":
                    raw.append(f"{where}: {name}")
                if name in ("remove_output", "replace_dir", "remove_written") and where != "registry_core/atomic.py":
                    calls.append(f"{where}: {name}")
    assert raw == []
    assert sorted(set(calls)) == [
        "registry_core/docs/_generate.py: remove_output",  # an empty folder of the generated reference
        "registry_core/docs/_generate.py: remove_written",  # a page the generator wrote (its header)
        "registry_core/pipeline/_run_dir.py: remove_output",  # run --overwrite: a marked run folder
        "registry_core/report/_make.py: remove_written",  # the report's own temp folder
        "registry_core/report/_make.py: replace_dir",  # an earlier report (marked)
        "registry_gfm/cube/store.py: remove_written",  # the store's own temp and region markers
        "registry_gfm/predict/_sinks.py: remove_written",  # predict's own staging
        "registry_gfm/predict/_sinks.py: replace_dir",  # predict --overwrite: an earlier prediction (marked)
        "registry_gfm/predict/_vectors.py: replace_dir",  # polygons --overwrite: an earlier output (marked)
        "registry_llm/data/shard_files.py: remove_output",  # a stale shard build (marked)
        "registry_llm/data/shard_files.py: remove_written",  # the build this process aborts
        "registry_llm/data/text_shards.py: remove_written",  # its own rejects temp file
    ]


def test_one_writer_per_output(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with writer_lock(out, "--out"):
        lock = tmp_path / ".run.registry-core.lock"
        assert lock.read_text().strip() == str(os.getpid())
        busy = pytest.raises(OutputPathError, match=rf"--out {out} is being written by another process \(pid {os.getpid()}\)")
        with busy, writer_lock(out, "--out"):  # a second open file: flock refuses it as it refuses another process
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the lock file goes with the writer
    with writer_lock(out):
        pass


def test_a_config_path_stays_inside_its_folder(tmp_path: Path) -> None:
    from registry_core.atomic import path_inside

    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    (run / "out-link").symlink_to(tmp_path, target_is_directory=True)
    assert path_inside(run, "sub/x.png", "evaluator option 'out'") == run / "sub" / "x.png"
    assert path_inside(run, tmp_path / "elsewhere.png", "out") == tmp_path / "elsewhere.png"  # explicit: absolute
    for escaping in ("../x.png", "sub/../../x.png", "out-link/x.png"):
        with pytest.raises(OutputPathError, match=f"evaluator option 'out' '{escaping}' leaves the folder {run}"):
            path_inside(run, escaping, "evaluator option 'out'")
