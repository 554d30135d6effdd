"""Atomic file writes: the one way every writer of the project puts a file in place (and a file's sha256), and
the one way an output is removed (``remove_output``: only what carries the project's marker).

Each function writes to a temp file beside the target, fsyncs it, renames it over the target and fsyncs
the folder, so a crash at any point leaves the old file or the new one, never a torn one; a failed write
removes its temp file. A writer that is the only one of its target (the trainer's checkpoints) may ask
for ``sweep=True``: its next successful write then removes temp files a killed process left behind;
without it nothing but its own temp file is touched, so concurrent writers never delete each other's.
Imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from registry_core._errors import FileFormatError, OutputPathError

__all__ = [
    "OUTPUT_MARKER",
    "atomic_path",
    "check_output_dir",
    "file_inside",
    "mark_output",
    "move_dir_into_place",
    "move_into_place",
    "output_kind",
    "path_inside",
    "removal_problem",
    "remove_output",
    "remove_written",
    "replace_dir",
    "sha256_file",
    "write_bytes",
    "write_json",
    "write_text",
    "writer_lock",
]

#: Mode of every file written here: ``mkstemp`` makes owner-only files, these are ordinary ones.
FILE_MODE: Final = 0o644

#: The file that marks a folder as an output the project wrote: ``{"writer": ..., "kind": ..., "id": ...}``.
OUTPUT_MARKER: Final = ".registry-core-output.json"
_WRITER: Final = "registry-core"

#: Reads the kind of output a path is (None: not one of ours); ``output_kind`` for folders, a plugin's own for
#: files that carry the marker inside (predict's GeoTIFF tags).
MarkerReader = Callable[[Path], str | None]


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable; not every platform can open a folder, which is then skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def move_into_place(src: Path, target: Path, *, sweep: bool = False) -> None:
    """fsync ``src`` and rename it over ``target`` (same file system); ``sweep``: remove stale temp files."""
    src, target = Path(src), Path(target)
    with src.open("rb+") as fh:
        os.fsync(fh.fileno())
    _rename(src, target)
    if sweep:
        for stale in target.parent.glob(f"{_temp_prefix(target)}*.tmp"):  # a process killed mid-write
            stale.unlink(missing_ok=True)


def _rename(src: Path, target: Path) -> None:
    """The project's one rename: ``src`` over ``target`` (a file, a link or an empty folder), made durable."""
    os.replace(src, target)
    _fsync_dir(Path(target).parent)


def remove_written(path: Path) -> None:
    """Remove a temp or set-aside path the caller itself wrote: a folder's tree, or a file or link (a link
    itself, never what it points to); nothing there is no error. Not for inputs or user folders."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def move_dir_into_place(src: Path, target: Path) -> None:
    """Rename the finished folder ``src`` to ``target``: nothing there (or an empty folder) is replaced, a
    non-empty folder raises OSError and stays as it is (the caller tells another writer that won the race
    from a failure)."""
    _rename(src, target)


def replace_dir(src: Path, target: Path, *, kind: str, inputs: Iterable[str | Path] = (),
                marked: MarkerReader | None = None) -> None:
    """Put the finished folder (or file) ``src`` in place of ``target``, an output of ``kind``.

    Something already at ``target`` is replaced only when ``remove_output`` could remove it (our marker of
    ``kind``, no link, no protected folder, no input); OutputPathError naming why otherwise, before any change.
    A file takes one rename (a folder there raises OSError and stays). A folder cannot replace another in one
    rename, so an existing ``target`` first moves aside (a hidden sibling); if the second rename fails it moves
    back, and only after the swap is the set-aside copy removed.
    """
    problem = removal_problem(target, kind, inputs=inputs, marked=marked or output_kind)
    if problem:
        raise OutputPathError(problem)
    src, target = Path(src), Path(target)
    if not src.is_dir():
        _rename(src, target)
        return
    aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    had = target.exists()  # (a link there was refused above)
    if had:
        _rename(target, aside)
    try:
        _rename(src, target)
    except OSError:
        if had:
            _rename(aside, target)
        raise
    if had:
        remove_written(aside)


@contextlib.contextmanager
def atomic_path(target: str | Path, *, sweep: bool = False) -> Iterator[Path]:
    """Yield a temp path beside ``target``; when the block succeeds, move it over ``target``.

    For writers that want a path of their own (``torch.save``, safetensors, numpy); the folder is created.
    ``sweep`` (a target with a single writer) also removes temp files a killed earlier write left.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, FILE_MODE)
        yield tmp
        move_into_place(tmp, target, sweep=sweep)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(target: str | Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding=encoding)


def write_json(target: str | Path, obj: Any, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON (with a final newline) to ``target`` atomically."""
    write_text(target, json.dumps(obj, indent=indent) + "\n")


def check_output_dir(out: Path, what: str = "--out") -> None:
    """Fail before any work when ``out`` cannot be an output folder (a file, or not creatable); creates nothing.

    ``what`` names it in the message (``--out``, ``store``).
    """
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"{what} {out} is a file; expected a folder (created when missing)")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"{what} {out} cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {out} cannot be " + ("written" if parent == out else "created")
                              + f": no permission to write in {parent}")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file's bytes, read in ``chunk``-byte blocks (bounded memory for any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# -- outputs: marked when written, removed only when marked ---------------------------------------------------


def mark_output(folder: str | Path, kind: str) -> None:
    """Mark ``folder``, an output this project is writing, as ours and of ``kind`` (run, report, export, ...)."""
    write_json(Path(folder) / OUTPUT_MARKER, {"writer": _WRITER, "kind": kind, "id": uuid.uuid4().hex})


def output_kind(path: str | Path) -> str | None:
    """The kind of output the folder ``path`` is, by its marker; None for no marker, a link, a file, a bad marker."""
    path = Path(path)
    marker = path / OUTPUT_MARKER
    if path.is_symlink() or not path.is_dir() or marker.is_symlink() or not marker.is_file():
        return None
    try:
        with marker.open("rb") as fh:
            record = json.loads(fh.read(4096))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("writer") != _WRITER or not isinstance(record.get("kind"), str):
        return None
    return str(record["kind"])


def _protected(real: Path) -> str | None:
    """Why the resolved ``real`` is never removed: the filesystem root, the home folder, the working folder or
    a folder above it."""
    here = Path.cwd().resolve()
    if real == Path(real.anchor):
        return "the filesystem root"
    if real == Path.home().resolve():
        return "the home folder"
    if real == here or real in here.parents:
        return "the working folder" if real == here else "a folder above the working folder"
    return None


def removal_problem(path: str | Path, kind: str, *, inputs: Iterable[str | Path] = (),
                    marked: MarkerReader = output_kind) -> str | None:
    """Why ``path`` may not be removed as an output of ``kind`` (None: it may, or nothing is there).

    Refused: a symbolic link; the filesystem root, home, working folder or one above it; a path that is or
    holds one of ``inputs``; anything but an empty folder without the project's marker of ``kind`` (``marked``
    reads it).
    """
    path = Path(path)
    if path.is_symlink():
        return (f"{path} is a symbolic link; the project removes only the outputs it wrote, never a link or what "
                "it points to")
    if not path.exists():
        return None
    real = path.resolve()
    why = _protected(real)
    if why:
        return f"{path} is {why}; it is never removed"
    for given in inputs:
        source = Path(given).resolve()
        if source == real or source.is_relative_to(real):
            return f"{path} is or holds {given}, an input of this command; it is never removed"
    if path.is_dir() and not any(path.iterdir()):
        return None  # an empty folder holds nothing to lose
    found = marked(path)
    if found != kind:
        what = "carries no registry-core marker" if found is None else f"is a {found} output"
        return (f"{path} {what}, so it was not written as a {kind} output of registry-core; it is left as it is "
                "(remove it yourself, or choose another path)")
    return None


def remove_output(path: str | Path, kind: str, *, inputs: Iterable[str | Path] = (),
                  marked: MarkerReader = output_kind) -> None:
    """The project's one removal of an output (``--overwrite``, stale builds): ``path`` goes only when it carries
    our marker of ``kind`` and is no protected folder or input (see ``removal_problem``); OutputPathError
    naming why otherwise. Links inside are removed as links, never followed."""
    path = Path(path)
    problem = removal_problem(path, kind, inputs=inputs, marked=marked)
    if problem:
        raise OutputPathError(problem)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


# -- one writer per output -------------------------------------------------------------------------------------


def _lock_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.registry-core.lock")


def _try_lock(lock: Path) -> int | None:
    """An open, locked descriptor of ``lock`` (created when missing), or None when another process holds it."""
    import fcntl

    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:  # the holder before us may have removed the file as it let go: lock the file that is there now
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _holder(lock: Path) -> str:
    try:
        return lock.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def writer_lock(output: str | Path, what: str = "output") -> Iterator[None]:
    """Be the one process writing ``output`` for the block: an advisory lock on a hidden file beside it (holding
    our pid), removed on exit. A second writer gets OutputPathError naming the holder's pid, before any change.

    ``what`` names the output in that message (``--out``, ``store``, ``--output``).
    """
    output = Path(output).absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock_path(output)
    fd = _try_lock(lock)
    if fd is None:
        raise OutputPathError(f"{what} {output} is being written by another process (pid {_holder(lock)}); wait "
                              "for it to finish, or choose another path")
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()  # while still holding it: a waiting writer then locks a fresh file
        os.close(fd)


# -- paths a config names --------------------------------------------------------------------------------------


def path_inside(folder: str | Path, path: str | Path, what: str, *, allow_absolute: bool = True) -> Path:
    """``path`` (relative: inside ``folder``) when it stays inside ``folder`` after resolving ``..`` and links;
    OutputPathError naming ``what`` otherwise. An absolute ``path`` is kept when ``allow_absolute`` (the user's
    explicit choice), else refused like one that climbs out.

    For outputs a run writes (evaluator files, shards); what a command reads from a run folder goes through
    :func:`file_inside`.
    """
    given = Path(path)
    base = Path(folder)
    if given.is_absolute():
        if allow_absolute:
            return given
        raise OutputPathError(f"{what} {str(path)!r} is outside the run folder {base}; give a path inside it, or "
                              "pass --outputs-anywhere to `run` to write there on purpose")
    target = base / given
    if not target.resolve().is_relative_to(base.resolve()):
        hint = "(or an absolute path, to write elsewhere on purpose)" if allow_absolute else \
            "(or pass --outputs-anywhere to `run` and give an absolute path, to write elsewhere on purpose)"
        raise OutputPathError(f"{what} {str(path)!r} leaves the folder {base}; give a path inside it {hint}")
    return target


def file_inside(folder: str | Path, name: str | Path, what: str = "run folder") -> Path:
    """``folder/name`` when it lies inside ``folder`` after resolving ``..`` and links; FileFormatError otherwise.

    For what a command reads from a folder it did not write (a run folder is untrusted input): a file there
    that is a link out of it, or a recorded name that is absolute or climbs out, is refused, never read.
    """
    given = Path(name)
    base = Path(folder)
    target = base / given
    if given.is_absolute() or not target.resolve().is_relative_to(base.resolve()):
        problem = (f"{given} is a link to {target.resolve()}, outside the folder" if target.is_symlink() and
                   not given.is_absolute() else f"the path {str(name)!r} lies outside the folder")
        raise FileFormatError(f"{what} {base}: {problem}; a {what} is read only from the files inside it")
    return target
