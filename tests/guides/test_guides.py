"""The guides run as shown: every command and Python snippet of README.md and docs/*.md, in a reader's order.

Sybil finds the examples (fenced blocks, and `<!-- skip: next "reason" -->` before one that needs the network);
the checks are the evaluators below: shell transcripts (`$ ` lines with the output a reader sees, compared by
doctest's checker after masking numbers), plain shell blocks, Python blocks in a namespace per guide, and
excerpts of shipped files (a block whose first line names the file). Everything runs in a fresh working copy of
the repository with its own virtual environment layered over the project's, so that installing the example
plugin touches nothing else. `GUIDES=docs/quickstart.md,README.md` runs only those (while editing a guide).
"""

from __future__ import annotations

import contextlib
import doctest
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

import pytest
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, SkipParser

REPO = Path(__file__).resolve().parents[2]

#: The order a reader meets the guides in: the quickstart makes the demo's runs, the others use them.
GUIDE_ORDER = ("docs/quickstart.md", "README.md", "docs/gfm-data.md", "docs/concepts.md", "docs/contracts.md",
               "docs/scaling.md", "docs/writing-a-plugin.md", "docs/architecture.md")
#: A command gets this long before it counts as hung.
COMMAND_TIMEOUT_S = 600
#: Numbers vary between machines and runs (losses, timings, sizes): masked on both sides before comparing.
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*(?:e[-+]?\d+)?")
_CHECK_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
#: `# path/to/file.py` or `# NAME, in path/to/file.py` on a Python block's first line: an excerpt of that file.
_EXCERPT_HEADER = re.compile(r"#\s+(?:[\w.]+, in )?(?P<path>[\w./-]+\.py)\s*$")


class GuideSession:
    """Runs shell commands in the working copy, as a reader's terminal would, and stops what they leave running."""

    def __init__(self, work: Path, env: dict[str, str], log: Path) -> None:
        self.work = work
        self.env = env
        self.groups: list[int] = []
        self.log = log  # every command with what it printed: the outputs to paste into a guide

    def run(self, script: str) -> tuple[int, str]:
        """Run a bash script; its output (stdout and stderr as one stream) and exit code."""
        # A file, not a pipe: a server the script starts with `&` keeps its output open after the script ends.
        with tempfile.TemporaryFile() as out:
            process = subprocess.Popen(["bash", "-o", "pipefail", "-ec", script], cwd=self.work, env=self.env,
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            self.groups.append(process.pid)
            try:
                code = process.wait(timeout=COMMAND_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                code = -9
            out.seek(0)
            text = out.read().decode("utf-8", "replace").replace(str(self.work), "/path/to/registry_core")
        with self.log.open("a", encoding="utf-8") as fh:
            fh.write(f"$ {script}\n{text}[exit code {code}]\n\n")
        return code, text

    def end_document(self) -> None:
        """Stop what a guide's commands left running in the background (a server started with `&`)."""
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
        self.groups.clear()

    close = end_document


def _mask(text: str) -> str:
    return _NUMBER.sub("0", text)


def _transcript(source: str) -> list[tuple[str, str]]:
    """`$ command` lines (a trailing backslash continues one) with the output shown under each."""
    steps: list[tuple[str, list[str]]] = []
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            steps.append((command, []))
        elif steps:
            steps[-1][1].append(line)
        i += 1
    return [(command, "\n".join(output).strip("\n") + "\n") for command, output in steps]


def _check_transcript(session: GuideSession, example: Example) -> str | None:
    checker = doctest.OutputChecker()
    for command, shown in _transcript(example.parsed):
        code, got = session.run(command)
        refused = any(line.startswith("error:") for line in shown.splitlines())
        if refused == (code == 0):
            return f"$ {command}\nexit code {code}, expected {'non-zero' if refused else '0'}; output:\n{got}"
        if shown.strip() and not checker.check_output(_mask(shown), _mask(got), _CHECK_FLAGS):
            diff = checker.output_difference(doctest.Example(command, shown), got, _CHECK_FLAGS)
            return f"$ {command}\n(compared with every number masked)\n{diff}"
    return None


def _check_script(session: GuideSession, example: Example) -> str | None:
    code, got = session.run(example.parsed)
    return None if code == 0 else f"exit code {code}:\n{example.parsed}\noutput:\n{got}"


def _strip_comment(line: str) -> str:
    code = line.split("  #", 1)[0] if "  #" in line else line
    return " ".join(code.split())


def _check_python(session: GuideSession, example: Example) -> str | None:
    source: str = example.parsed
    header = _EXCERPT_HEADER.match(source.splitlines()[0]) if source.strip() else None
    if header and (session.work / header["path"]).is_file():
        return _check_excerpt(session.work / header["path"], source)
    exec(compile(source, f"{example.path}:{example.line}", "exec"), example.namespace)
    return None


def _check_excerpt(path: Path, source: str) -> str | None:
    """Each shown line is in the file, in order; a shown line cut short with `...` starts a line of the file."""
    have = [_strip_comment(line) for line in path.read_text().splitlines()]
    at = 0
    for shown in source.splitlines()[1:]:
        want = _strip_comment(shown)
        if not want or want == "..." or want.startswith("#"):
            continue
        head = want.split("...", 1)[0].strip() if "..." in want else None
        found = next((i for i in range(at, len(have))
                      if (have[i].startswith(head) if head is not None else have[i] == want)), None)
        if found is None:
            return f"{path.name}: no line {shown.strip()!r} (after line {at}) in {path}"
        at = found + 1
    return None


def guide_sybil(session: GuideSession) -> Sybil:
    """Sybil with our evaluators: transcripts in ```text / ```console, scripts in ```bash, and Python."""

    def transcript(example: Example) -> str | None:
        return _check_transcript(session, example) if "$ " in example.parsed else None

    def script(example: Example) -> str | None:
        return _check_script(session, example)

    def python(example: Example) -> str | None:
        return _check_python(session, example)

    parsers: list[Any] = [SkipParser(), CodeBlockParser("text", transcript), CodeBlockParser("console", transcript),
                          CodeBlockParser("bash", script), CodeBlockParser("python", python)]
    return Sybil(parsers=parsers, path=str(REPO), patterns=["*.md"])


def test_the_order_names_every_guide() -> None:
    guides = {"README.md", *(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))}
    assert guides == set(GUIDE_ORDER)


def test_a_transcript_is_read_into_commands_and_outputs() -> None:
    steps = _transcript("$ python -m x \\\n    --flag\nline 1\n\n$ echo\n")
    assert steps == [("python -m x  --flag", "line 1\n"), ("echo", "\n")]


def _working_copy(dest: Path) -> Path:
    """The files git knows of (tracked, and untracked but not ignored): what a fresh clone holds, and edits."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def _layered_venv(dest: Path) -> Path:
    """A venv whose site-packages first adds the project's own: `pip install` in it leaves the project's alone."""
    subprocess.run([sys.executable, "-m", "venv", str(dest)], check=True)
    site = next((dest / "lib").glob("python3*/site-packages"))
    base = next(p for p in map(Path, sys.path) if p.name == "site-packages" and str(p).startswith(sys.prefix))
    (site / "_project_venv.pth").write_text(f"import site; site.addsitedir({str(base)!r})\n")
    # The project's console scripts (torchrun, dask, ...), started by this venv's interpreter.
    ours = dest / "bin" / "python"
    for script in (Path(sys.prefix) / "bin").iterdir():
        target = dest / "bin" / script.name
        if target.exists() or not script.is_file():
            continue
        head = script.read_bytes()[:200]
        if head.startswith(b"#!") and b"python" in head.split(b"\n", 1)[0]:
            body = script.read_text().split("\n", 1)[1]
            target.write_text(f"#!{ours}\n{body}")
            target.chmod(0o755)
    # What `make setup` leaves: its stamps, so a guide's `make setup` finds the environment installed.
    for stamp in (".installed-run", ".installed"):
        (dest / stamp).touch()
    return dest


@pytest.mark.slow
def test_every_guide_runs_as_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = _working_copy(tmp_path / "registry_core")
    _layered_venv(work / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_CORE_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=f"{work / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(work / ".venv"),
               HF_HOME=str(tmp_path / "hf"), MPLBACKEND="Agg", NO_COLOR="1")
    monkeypatch.chdir(work)
    session = GuideSession(work, env, tmp_path / "transcript.log")
    sybil = guide_sybil(session)
    failures: list[str] = []
    skipped: list[str] = []
    passed = 0
    try:
        chosen = os.environ.get("GUIDES", "").split(",")  # e.g. GUIDES=docs/quickstart.md, while editing one
        for name in [n for n in GUIDE_ORDER if n in chosen] or GUIDE_ORDER:
            document = sybil.parse(work / name)
            for example in document:
                where = f"{name}:{example.line}"
                try:
                    example.evaluate()
                except unittest.SkipTest as skip:
                    skipped.append(f"{where}: {skip}")
                except Exception as error:
                    failures.append(f"{where}: {error}")
                else:
                    passed += int(not _is_directive(example))
            session.end_document()
    finally:
        session.close()
    print(f"every command's output: {tmp_path / 'transcript.log'}")
    print(f"guides: {passed} examples passed, {len(failures)} failed, {len(skipped)} skipped:", *skipped,
          sep="\n  ")
    assert not failures, f"{len(failures)} guide example(s) failed:\n\n" + "\n\n".join(failures)


def _is_directive(example: object) -> bool:
    parsed = getattr(example, "parsed", None)
    return isinstance(parsed, tuple)
