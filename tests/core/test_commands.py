"""CLI commands that plugins add (registry_core_commands), over real entry points, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from registry_core import Registry

PLUGIN = """
from registry_core import CommandSpec, hookimpl

@hookimpl
def registry_core_commands():
    return [CommandSpec("{name}", "say hello to someone", arguments="{impl}:add_arguments", handler="{impl}:hello")]
"""

#: The command's code, in its own module: imported only when the command is parsed and run.
IMPL = """
def add_arguments(parser):
    parser.add_argument("who")
    parser.add_argument("--code", type=int, default=0)

def hello(args):
    print(f"hello {args.who}")
    return args.code
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True, check=False)


def install(make_dist, site_dir: Path, name: str = "hello", impl: str | None = "rc_hello_impl", ep: str = "greet") -> None:
    """A plugin adding command ``name`` whose code lives in module ``impl`` (None: the module is missing)."""
    module = impl or "rc_missing_impl"
    if impl is not None:
        (site_dir / f"{impl}.py").write_text(IMPL)
    make_dist(ep, PLUGIN.format(name=name, impl=module))


def test_a_plugin_command_runs_with_its_own_arguments(make_dist, site_dir: Path) -> None:
    install(make_dist, site_dir)
    out = cli("hello", "world", "--code", "3")
    assert (out.returncode, out.stdout, out.stderr) == (3, "hello world\n", "")
    usage = cli("hello")
    assert usage.returncode == 2 and "the following arguments are required: who" in usage.stderr
    assert "--code" in cli("hello", "--help").stdout


def test_help_lists_plugin_commands_with_their_plugin(make_dist, site_dir: Path) -> None:
    install(make_dist, site_dir)
    out = cli("--help")
    assert out.returncode == 0
    assert "say hello to someone (plugin greet)" in out.stdout
    assert "continue a prompt with a saved language-model pipeline (plugin llm)" in " ".join(out.stdout.split())
    reg = Registry(use_env=False)
    assert {n: c.plugin for n, c in reg.commands().items()} == {"generate": "llm", "predict": "gfm",
                                                               "vectorize": "gfm", "hello": "greet"}


@pytest.mark.parametrize("args", [["--help"], ["list"], ["check", "--help"]])
def test_help_and_list_import_no_command_code(make_dist, site_dir: Path, cli_modules, args: list[str]) -> None:
    install(make_dist, site_dir)
    loaded = cli_modules(*args)
    own = ("registry_core.cli._export", "registry_core.cli._report", "registry_core.cli._serve",  # the core's, same route
           "registry_core.docs")
    assert [m for m in ("rc_hello_impl", "registry_llm.commands", "torch", *own) if m in loaded] == []


def test_a_command_whose_code_is_missing_is_a_one_line_error(make_dist, site_dir: Path) -> None:
    install(make_dist, site_dir, impl=None)
    out = cli("hello", "world")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: command 'hello' of plugin 'greet' cannot be loaded: importing its arguments "
                                 "'rc_missing_impl:add_arguments' failed with ModuleNotFoundError")
    assert len(out.stderr.strip().splitlines()) == 1
    plugins = {p["name"]: p for p in json.loads(cli("plugins", "--json").stdout)}
    assert plugins["greet"]["status"] == "broken" and "rc_missing_impl" in plugins["greet"]["error"]
    assert plugins["llm"]["status"] == "loaded"
    doctor = cli("doctor")
    assert doctor.returncode == 1 and "broken plugin 'greet': command 'hello'" in doctor.stdout
    assert cli("list").returncode == 0


def test_a_failing_arguments_function_is_a_one_line_error(make_dist, site_dir: Path) -> None:
    (site_dir / "rc_bad_args.py").write_text("def add_arguments(parser):\n    raise RuntimeError('no args today')\n"
                                             "def hello(args):\n    return 0\n")
    make_dist("greet", PLUGIN.format(name="hello", impl="rc_bad_args"))
    out = cli("hello")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "error: command 'hello' of plugin 'greet' failed to add its arguments" in out.stderr
    assert "RuntimeError: no args today" in out.stderr


@pytest.mark.parametrize(
    ("hook_body", "fragment"),
    [
        ("raise RuntimeError('commands unavailable')", "commands unavailable"),
        ("return [object()]", "expected a CommandSpec"),
        ("return [CommandSpec('hello', 'hi', arguments='no colon', handler='m:f')]", "arguments"),
        ("return [CommandSpec('Hello World', 'hi', arguments='m:a', handler='m:f')]", "not a valid name"),
        ("return [CommandSpec('hello', '', arguments='m:a', handler='m:f')]", "help"),
    ],
    ids=["hook-raises", "not-a-command-spec", "bad-target", "bad-name", "no-help"],
)
def test_a_bad_command_hook_breaks_only_its_plugin(make_dist, hook_body: str, fragment: str) -> None:
    make_dist("badcmd", f"from registry_core import CommandSpec, hookimpl\n\n@hookimpl\ndef registry_core_commands():\n"
                        f"    {hook_body}\n")
    reg = Registry(use_env=False)
    info = {p.name: p for p in reg.plugins()}
    assert info["badcmd"].status == "broken" and fragment in (info["badcmd"].error or "")
    assert "registry_core_commands() failed" in (info["badcmd"].error or "")
    assert sorted(reg.commands()) == ["generate", "predict", "vectorize"]
    out = cli("plugins")
    assert out.returncode == 0 and "badcmd" in out.stdout and "broken" in out.stdout
    assert cli("list", "--kind", "tokenizer").returncode == 0
    run = cli("hello")  # its commands are unknown: the error says a plugin is broken
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith("error: unknown command 'hello'") and "broken plugins, whose commands are " \
        "unavailable: badcmd" in run.stderr


def test_an_unknown_command_is_a_one_line_usage_error() -> None:
    out = cli("lsit")
    assert (out.returncode, out.stderr) == (2, "error: unknown command 'lsit'; did you mean 'list'?\n")
    assert cli("generat").stderr == "error: unknown command 'generat'; did you mean 'generate'?\n"


def test_a_command_name_taken_twice_or_from_the_core_is_reported(make_dist, site_dir: Path) -> None:
    install(make_dist, site_dir, ep="greet")
    install(make_dist, site_dir, ep="greet2")
    install(make_dist, site_dir, name="list", ep="shadow")
    reg = Registry(use_env=False)
    assert reg.commands()["hello"].plugin == "greet"
    assert "list" not in reg.commands()
    assert "command 'hello' declared by plugin 'greet2' is ignored: plugin 'greet' already declares it" in reg.problems
    assert "command 'list' of plugin 'shadow' is ignored: it is a core command" in reg.problems
    doctor = cli("doctor")
    assert doctor.returncode == 1 and "problem: command 'list' of plugin 'shadow'" in doctor.stdout
    assert cli("list", "--kind", "tokenizer").returncode == 0  # still the core's list
    assert cli("hello", "you").stdout == "hello you\n"


def test_the_core_knows_its_own_command_names() -> None:
    from registry_core._kinds import CORE_COMMANDS
    from registry_core.cli import build_parser

    sub = next(a for a in build_parser(Registry(autoload=False, use_env=False))._actions if a.dest == "command")
    assert tuple(sub.choices) == CORE_COMMANDS  # type: ignore[arg-type]


def test_export_report_and_docs_are_declared_as_plugins_declare_commands() -> None:
    from registry_core._kinds import CORE_COMMANDS
    from registry_core.cli._commands import BUILTIN_COMMANDS

    assert [c.name for c in BUILTIN_COMMANDS] == ["export", "report", "pull", "serve", "docs"]
    assert all(c.name in CORE_COMMANDS and c.plugin is None for c in BUILTIN_COMMANDS)
    out = cli("report", "--help")
    assert out.returncode == 0 and "Write OUT/index.html" in " ".join(out.stdout.split())


INTERRUPTED_IMPL = """
import asyncio
import threading

def add_arguments(parser):
    pass

async def _write():
    await asyncio.sleep(0)

import atexit
import concurrent.futures

# an async store's IO loop in a thread of its own with its executor, stopped by an exit hook, as zarr's
LOOP = asyncio.new_event_loop()
POOL = concurrent.futures.ThreadPoolExecutor(2)
LOOP.set_default_executor(POOL)
THREAD = threading.Thread(target=LOOP.run_forever, daemon=True)

async def _encode():
    while True:  # chunks still being encoded when the exit hook shuts the executor down
        await LOOP.run_in_executor(None, sum, [1])

def _cleanup():
    POOL.shutdown(wait=True, cancel_futures=True)
    LOOP.call_soon_threadsafe(LOOP.stop)
    THREAD.join()

def hello(args):
    pending = _write()  # what Ctrl-C leaves behind mid-write in an async store: a coroutine never awaited
    THREAD.start()
    atexit.register(_cleanup)
    for _ in range(4):
        asyncio.run_coroutine_threadsafe(_encode(), LOOP)
    raise KeyboardInterrupt
"""


def test_ctrl_c_ends_in_one_line_even_with_unawaited_coroutines(make_dist, site_dir: Path) -> None:
    """Also with an async store's tasks still running in their loop at exit (asyncio reports each one it destroys,
    with a traceback: a flaky Ctrl-C ingest test caught it)."""
    (site_dir / "rc_interrupted_impl.py").write_text(INTERRUPTED_IMPL)
    make_dist("interrupted", PLUGIN.format(name="stopme", impl="rc_interrupted_impl"))
    out = cli("stopme")
    assert out.returncode == 130
    assert out.stderr.splitlines() == ["error: interrupted"], out.stderr
