"""What users expect of the CLI, run as they run it (subprocesses): overrides shown, warnings, kinds as
arguments, tables wrapped on a terminal only, a second ingest that says it is complete, a README that
names only what exists."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from registry_core._spec import NAME_RE
from registry_core.cli import _render

ROOT = Path(__file__).resolve().parents[2]
GPT_TINY = str(ROOT / "examples/gpt-tiny.toml")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True, check=False,
                          cwd=cwd, env=env)


def on_a_terminal(*args: str, columns: int) -> str:
    """What the CLI prints when stdout is a terminal ``columns`` wide (a pseudo-terminal; COLUMNS says its width)."""
    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns)}
    proc = subprocess.Popen([sys.executable, "-m", "registry_core", *args], stdout=child, stderr=subprocess.DEVNULL,
                            env=env)
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert proc.wait(timeout=120) == 0
    return _ANSI.sub("", b"".join(chunks).decode()).replace("\r", "")


# -- check shows what --set changed; a run shorter than its warm-up is warned about ------------------------


def test_check_shows_the_values_set_changed() -> None:
    out = cli("check", GPT_TINY, "--set", "backbone.depth=2", "--set", "train.lr=0.002", "--set",
              "tokenizer.path=tok.json")
    assert out.returncode == 0, out.stderr
    assert 'overrides: backbone.depth: 4 -> 2; train.lr: 0.003 -> 0.002; tokenizer.path: (unset) -> "tok.json"' \
        in out.stdout.splitlines()
    record = json.loads(cli("check", GPT_TINY, "--set", "backbone.depth=2", "--json").stdout)
    assert record["overrides"] == [{"key": "backbone.depth", "before": 4, "after": 2}]
    plain = cli("check", GPT_TINY)
    assert "overrides" not in plain.stdout and json.loads(cli("check", GPT_TINY, "--json").stdout)["overrides"] == []


def test_check_warns_when_steps_are_fewer_than_warmup_steps() -> None:
    out = cli("check", GPT_TINY, "--set", "train.steps=10")
    assert out.returncode == 0
    assert out.stderr == ("warning: train.steps=10 is less than train.warmup_steps=30: the run ends in warm-up and "
                          "never reaches lr=0.003 (lower warmup_steps or raise steps)\n")
    assert cli("check", GPT_TINY).stderr == ""


# -- list takes a kind as its argument (the hint of `show data_source stac-zarr`) -----------------------------


def test_list_takes_a_kind_as_its_argument() -> None:
    hint = cli("show", "data_source", "stac-zarr")
    assert "`list stac_loader`" in hint.stdout
    out = cli("list", "stac_loader")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "stac_loader"
    assert "gfm:stackstac" in out.stdout and "gfm:odc-stac" in out.stdout and "tokenizer" not in out.stdout
    rows = json.loads(cli("list", "tokenizer", "--json").stdout)
    assert rows and {r["kind"] for r in rows} == {"tokenizer"}
    # a word that is no kind is still a name pattern
    assert [r["id"] for r in json.loads(cli("list", "stackstac", "--json").stdout)] == ["gfm:stackstac"]


# -- tables: wrapped to a terminal's width, never when piped ---------------------------------------------------


def test_show_wraps_the_description_column_to_the_terminal_width() -> None:
    text = on_a_terminal("show", "data_source", "stac-zarr", columns=72)
    lines = text.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("  options (")) + 1:]
    assert len(table) > 20 and max(len(line) for line in table) <= 72
    flat = " ".join(text.split())
    assert "list[float]" in flat and "[west," in flat  # rich markup does not eat brackets


def test_piped_tables_are_not_wrapped() -> None:
    env = {**os.environ, "COLUMNS": "40"}
    out = cli("show", "data_source", "stac-zarr", env=env)
    assert any(line.rstrip().endswith("STAC API URL (http://host/...) or path / URL of a static catalog.json")
               for line in out.stdout.splitlines())


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_tables_wrap_the_last_column_under_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_render, "use_rich", lambda stream: False)  # the table rich is not installed for
    monkeypatch.setenv("COLUMNS", "40")
    stream = _Terminal()
    _render.print_table([["a", "one two three four five six seven eight nine ten eleven"]], ["k", "help"],
                        stream=stream)
    lines = stream.getvalue().splitlines()
    assert lines == ["  k  help", "  a  one two three four five six seven", "     eight nine ten eleven"]


# -- a second ingest of a complete store says so; progress is plain lines when stderr is piped ----------------


@pytest.mark.slow
def test_a_second_ingest_says_the_store_is_complete(tmp_path: Path) -> None:
    store = tmp_path / "cube.zarr"
    args = ("ingest", "examples/lsat7-ingest.toml", "--set", f"data.store={store}", "--set", "data.chunk_size=128")
    first = cli(*args, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert "\r" not in first.stderr  # no bar redraws in a log
    assert "ingest cube.zarr: 16/16 regions (100%)" in first.stderr.splitlines()
    second = cli(*args, cwd=ROOT)
    assert second.returncode == 0, second.stderr
    assert f"ingest: store {store} is already complete (same items, bands, grid and chunking); nothing to do" \
        in second.stderr.splitlines()
    assert "regions" not in second.stderr


# -- the README names only components, commands and files that exist ----------------------------------------


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def _registered() -> dict[str, set[str]]:
    rows: list[dict[str, Any]] = json.loads(cli("list", "--json").stdout)
    kinds: dict[str, set[str]] = {}
    for r in rows:
        kinds.setdefault(r["kind"], set()).add(r["name"])
    return kinds


def _table_components(readme: str) -> list[tuple[str, str]]:
    """(kind, name) of each component a README ``| kind | components |`` table names: the backticked names at the
    start of a cell or after ``, `` / ``; `` (what follows a name, in parentheses or after a colon, is prose)."""
    named = []
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or cells[0] in ("kind", "---") or not NAME_RE.match(cells[0]):
            continue
        for name in re.findall(r"(?:^|[,;] )`([^`]+)`", cells[1]):
            if NAME_RE.match(name) and not re.search(r"\.[a-z]+$", name):  # not a file name (`tokenizer.json`)
                named.append((cells[0], name))
    return named


def test_the_readme_tables_name_only_registered_components() -> None:
    registered = _registered()
    named = _table_components(_readme())
    assert len(named) >= 30  # both stacks' tables were read
    missing = [f"{kind} {name}" for kind, name in named if name not in registered.get(kind, set())]
    assert not missing, f"README.md names components nobody registers: {', '.join(missing)}"
    listed = {name for _, name in named}
    unlisted = sorted(f"{k} {n}" for k, names in registered.items() for n in names
                      if n not in listed)
    assert not unlisted, f"README.md's tables leave out {', '.join(unlisted)}"


def test_the_readme_names_only_commands_and_files_that_exist() -> None:
    readme = _readme()
    commands = set(re.findall(r"-m registry_core (\w+)", readme))
    help_text = cli("--help").stdout
    assert commands and not [c for c in commands if not re.search(rf"^\s+{c}\s", help_text, re.M)]
    # a shell pattern (`lsat7_2000_B{1,2}.tif`) counts by its folder; tests/guides runs the commands themselves
    paths = set(re.findall(r"\b((?:examples|docs|bench|plugins|tests)/[\w./-]+\w)(?![\w{\[])", readme))
    assert not sorted(p for p in paths if not (ROOT / p.split("#")[0]).exists())
    assert (ROOT / "constraints.txt").is_file() and "make lock" in readme


# -- export: formats come from the plugins' weights specs ---------------------------------------------------------


def test_export_formats_are_the_weights_specs_with_an_exporter() -> None:
    assert "export format: deploy, hf-bert, hf-gpt2" in " ".join(cli("export", "--help").stdout.split())
    assert "exports:     python -m registry_core export RUN_DIR --to hf-gpt2 OUT" in cli("show", "weights",
                                                                                          "hf-gpt2").stdout
    assert json.loads(cli("show", "weights", "prithvi", "--json").stdout)["exporter"] is None
    refused = cli("export", "runs/x", "--to", "prithvi", "out")
    assert refused.returncode == 2
    assert refused.stderr == "error: weights gfm:prithvi can be loaded but not exported; installed formats: deploy, hf-bert, hf-gpt2\n"


BAD_EXPORTER = """
from registry_core import ComponentSpec, hookimpl

@hookimpl
def registry_core_components():
    return [ComponentSpec("weights", "odd", "pkg.mod:build", "Odd weights.", exporter="not a target")]
"""


def test_a_malformed_exporter_makes_its_plugin_broken(make_dist: Any) -> None:
    make_dist("oddw", BAD_EXPORTER)
    out = cli("plugins")
    assert "broken" in out.stdout and "exporter target 'not a target' is not of the form" in out.stdout
