"""Bad inputs through the real CLI (subprocesses): one ``error:`` line naming the thing at fault, the exit code,
no traceback (unless ``--debug``), ``--json`` errors on stdout, and nothing written or lost.

The toy plugin of tests/pipeline stands in for a real stack, so a run takes a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from registry_core.pipeline._toml import dumps
from registry_core.testing import one_error_line

GOOD = {
    "name": "toy",
    "data": {"use": "toy-text", "seq_len": 8},
    "tokenizer": {"use": "toy-tok", "vocab_size": 16},
    "positional": {"use": "toy-learned"},
    "backbone": {"use": "toy-decoder", "embed_dim": 16},
    "objective": {"use": "toy-next"},
    "train": {"steps": 4, "batch_size": 4, "lr": 0.01, "warmup_steps": 1, "log_every": 2, "checkpoint_every": 2},
}

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def toy(toy_plugin: None, tmp_path: Path) -> Path:
    """The toy plugin installed as a throw-away distribution; returns a valid toy pipeline file."""
    path = tmp_path / "toy.toml"
    path.write_text(dumps(GOOD))
    return path


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if k != "REGISTRY_CORE_DEBUG"}
        return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True,
                              cwd=tmp_path, check=False, env={**environ, **(env or {})})

    return run


one_error = one_error_line


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- usage and lookup errors: no plugin needed ---------------------------------------------------------------

USAGE = [
    (["lsit"], 2, "error: unknown command 'lsit'; did you mean 'list'?"),
    (["show", "backbone"], 2, "error: python -m registry_core show: the following arguments are required: name "
                              "(see python -m registry_core show --help)"),
    (["list", "--bogus"], 2, "error: python -m registry_core: unrecognized arguments: --bogus "
                             "(see python -m registry_core --help)"),
    (["run", "x.toml", "--steps", "many"], 2, "error: python -m registry_core run: argument --steps: invalid int "
                                              "value: 'many' (see python -m registry_core run --help)"),
    (["list", "--modality", "imagry"], 2, "error: unknown modality 'imagry'; did you mean 'imagery'?"),
    (["list", "--kind", "backbon"], 1, "error: unknown component kind 'backbon'; did you mean 'backbone'?"),
    (["show", "tokenizer", "bpee"], 1, "error: no tokenizer named 'bpee'; did you mean 'bpe'?"),
]


@pytest.mark.parametrize(("args", "code", "line"), USAGE, ids=[" ".join(a) for a, _, _ in USAGE])
def test_usage_and_lookup_errors_are_one_line(cli: Cli, args: list[str], code: int, line: str) -> None:
    assert one_error(cli(*args), code) == line


# -- pipeline files that cannot be read ------------------------------------------------------------------------

def _bad_file(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A pipeline file argument that is not a readable pipeline, and the error it must give."""
    if kind == "missing":
        return tmp_path / "nope.toml", f"pipeline file '{tmp_path / 'nope.toml'}' does not exist"
    if kind == "directory":
        (tmp_path / "dir.toml").mkdir()
        return tmp_path / "dir.toml", f"pipeline file '{tmp_path / 'dir.toml'}' is a directory; expected a TOML file"
    if kind == "latin-1":
        path = tmp_path / "latin.toml"
        path.write_bytes(b'name = "caf\xe9"\n')
        return path, f"pipeline file '{path}' is not UTF-8 text (byte 11 is 0xe9); expected a TOML file"
    path = tmp_path / "broken.toml"
    path.write_text("[data\nuse = 1\n")
    return path, f"{path} is not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 6)"


@pytest.mark.parametrize("command", ["check", "run", "ingest"])
@pytest.mark.parametrize("kind", ["missing", "directory", "latin-1", "bad-toml"])
def test_an_unreadable_pipeline_file_is_named(cli: Cli, tmp_path: Path, command: str, kind: str) -> None:
    path, message = _bad_file(tmp_path, kind)
    before = snapshot(tmp_path)
    assert one_error(cli(command, str(path)), 1) == f"error: {message}"
    assert snapshot(tmp_path) == before  # nothing written (no runs/ folder either)


# -- configs that compose to errors ----------------------------------------------------------------------------

def test_config_errors_name_file_slot_and_key(cli: Cli, toy: Path) -> None:
    line = one_error(cli("check", str(toy), "--set", "backbone.embed_dim=abc"), 1)
    assert line == f"error: {toy}: [backbone.embed_dim] expected an int, got str 'abc'"
    line = one_error(cli("check", str(toy), "--set", "backbone.use=toy-encoder"), 1)
    assert line.startswith(f"error: {toy}: [objective.causal] objective `toy-next` requires causal=true but backbone "
                           "`toy-encoder` provides causal=false")
    two = cli("check", str(toy), "--set", "backbone.embed_dim=abc", "--set", "tokenizer.vocab_size=x")
    assert two.returncode == 1 and "Traceback" not in two.stderr
    assert sorted(two.stderr.splitlines()) == [  # one line per issue, every one named
        f"error: {toy}: [backbone.embed_dim] expected an int, got str 'abc'",
        f"error: {toy}: [tokenizer.vocab_size] expected an int, got str 'x'",
    ]


def test_json_errors_go_to_stdout_with_slot_and_key(cli: Cli, toy: Path, tmp_path: Path) -> None:
    out = cli("--json", "check", str(toy), "--set", "backbone.embed_dim=abc")  # --json before the command too
    assert (out.returncode, out.stderr) == (1, "")
    record = json.loads(out.stdout)
    assert record["ok"] is False and record["type"] == "ConfigError" and record["file"] == str(toy)
    assert (record["slot"], record["key"]) == ("backbone", "embed_dim")
    assert record["error"] == f"{toy}: [backbone.embed_dim] expected an int, got str 'abc'"
    assert record["errors"] == [{"slot": "backbone", "key": "embed_dim", "message": "expected an int, got str 'abc'"}]
    usage = cli("show", "backbone", "--json")
    assert (usage.returncode, usage.stderr) == (2, "")
    assert json.loads(usage.stdout)["exit_code"] == 2 and "required: name" in json.loads(usage.stdout)["error"]
    missing = cli("run", str(tmp_path / "nope.toml"), "--json")
    assert missing.returncode == 1 and json.loads(missing.stdout)["error"].startswith("pipeline file ")


def test_debug_flag_and_environment_print_the_traceback(cli: Cli, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    for out in (cli("check", missing, "--debug"), cli("--debug", "check", missing),
                cli("check", missing, env={"REGISTRY_CORE_DEBUG": "1"})):
        assert out.returncode == 1
        assert out.stderr.startswith("Traceback (most recent call last):") and "ConfigError" in out.stderr
        assert out.stderr.splitlines()[-1] == f"error: pipeline file '{missing}' does not exist"
    assert "Traceback" not in cli("check", missing, env={"REGISTRY_CORE_DEBUG": "0"}).stderr


# -- commands that raise what the boundary must still turn into one line ---------------------------------------

RAISER = """
from registry_core import CommandSpec, hookimpl

def arguments(parser):
    parser.add_argument("what")

def handler(args):
    if args.what == "bug":
        return {}["missing"]
    if args.what == "value":
        raise ValueError("option 'width' must be even, got 3")
    if args.what == "oserror":
        open("/nonexistent-folder/file.txt")
    raise KeyboardInterrupt

@hookimpl
def registry_core_commands():
    return [CommandSpec("raise", "raise something", arguments=f"{__name__}:arguments", handler=f"{__name__}:handler")]
"""

RAISED = [
    ("bug", 1, "error: KeyError: 'missing' (run with --debug or REGISTRY_CORE_DEBUG=1 for the traceback)"),
    ("value", 1, "error: option 'width' must be even, got 3 (run with --debug or REGISTRY_CORE_DEBUG=1 for the "
                 "traceback)"),
    ("oserror", 1, "error: /nonexistent-folder/file.txt: No such file or directory"),
    ("interrupt", 130, "error: interrupted"),
]


@pytest.mark.parametrize(("what", "code", "line"), RAISED, ids=[w for w, _, _ in RAISED])
def test_unexpected_errors_and_ctrl_c_are_one_line(make_dist, cli: Cli, what: str, code: int, line: str) -> None:
    make_dist("raiser", RAISER)
    assert one_error(cli("raise", what), code) == line


def test_a_plugin_command_takes_json_and_debug(make_dist, cli: Cli) -> None:
    make_dist("raiser", RAISER)
    out = cli("raise", "bug", "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["type"] == "KeyError"
    debug = cli("raise", "value", "--debug")
    assert "Traceback" in debug.stderr and debug.stderr.splitlines()[-1].startswith("error: option 'width'")


# -- runs: outputs that cannot be written, run folders that cannot be read -------------------------------------

def test_an_unusable_out_fails_before_any_work(cli: Cli, toy: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("keep me")
    assert one_error(cli("run", str(toy), "--out", str(a_file)), 1) == \
        f"error: --out {a_file} is a file; expected a folder (created when missing)"
    assert one_error(cli("run", str(toy), "--out", str(a_file / "run")), 1) == \
        f"error: --out {a_file / 'run'} cannot be created: {a_file} is a file, not a folder"
    assert a_file.read_text() == "keep me"
    assert not (tmp_path / "runs").exists()


@pytest.fixture
def toy_run(cli: Cli, toy: Path, tmp_path: Path) -> Path:
    out = cli("run", str(toy), "--out", "run", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)  # --json: the summary is the whole of stdout
    assert summary["step"] == 4 and summary["out"] == "run"
    assert "train: step" in out.stderr  # progress lines go to stderr
    return tmp_path / "run"


@pytest.mark.slow
def test_a_damaged_run_folder_is_named_and_left_as_it_was(cli: Cli, toy: Path, toy_run: Path) -> None:
    checkpoint = toy_run / "checkpoints" / "last.pt"
    whole = checkpoint.read_bytes()
    checkpoint.write_bytes(whole[: len(whole) // 2])
    before = snapshot(toy_run)
    line = one_error(cli("run", str(toy), "--out", "run", "--resume", "--steps", "8"), 1)
    assert line.startswith("error: checkpoint run/checkpoints/last.pt could not be read as a trainer checkpoint (")
    assert line.endswith("); expected a checkpoint the trainer wrote, not a truncated or damaged file")
    assert snapshot(toy_run) == before
    checkpoint.write_bytes(whole)

    metrics = toy_run / "metrics.jsonl"
    metrics.write_bytes(b'{"step": 1, "loss": 2.0}\n\xff\xfe\n')
    before = snapshot(toy_run)
    done = cli("run", str(toy), "--out", "run", "--resume", "--steps", "8")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [  # the longer schedule's note (one line, as every warning), then the error
        "warning: checkpoint run/checkpoints/last.pt was scheduled for 4 steps, this run for 8; the cosine decay "
        "continues on the new length",
        "error: run/metrics.jsonl line 2 is not UTF-8 text; expected the JSON lines a run writes (move the file "
        "away to start a new log)"]
    assert snapshot(toy_run) == before


@pytest.mark.slow
def test_a_run_folder_that_cannot_be_loaded_is_named(cli: Cli, toy_run: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-run"
    assert one_error(cli("generate", str(missing), "--prompt", "x"), 1) == \
        f"error: run folder {missing} does not exist; expected a folder written by `python -m registry_core run " \
        "X.toml --out DIR` or Pipeline.save"
    assert one_error(cli("generate", str(toy_run), "--prompt", "x"), 1) == \
        f"error: objective toy:toy-next of run {toy_run} cannot generate; expected a run of a language-model " \
        "objective such as next-token"
    weights = toy_run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    line = one_error(cli("generate", str(toy_run), "--prompt", "x"), 1)  # the lock's sha256 catches it first
    assert line == f"error: model:model.safetensors ({weights.resolve()}) has changed since the pipeline was saved: " \
        f"its sha256 differs from the one in {(toy_run / 'pipeline.lock.json').resolve()}"
    (toy_run / "pipeline.lock.json").unlink()
    line = one_error(cli("generate", str(toy_run), "--prompt", "x"), 1)
    assert line.startswith(f"error: {weights.resolve()} cannot be loaded into the pipeline's model: ")
    assert line.endswith("expected the safetensors weights written by Pipeline.save for this pipeline.toml")
    assert weights.stat().st_size == 100
