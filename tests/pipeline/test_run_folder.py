"""`run` never silently replaces a run: refusal, --overwrite, --resume from the folder's own config, shape checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from registry_core import Registry
from registry_core.pipeline._toml import dumps

pytestmark = pytest.mark.usefixtures("toy_registry")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True, cwd=cwd,
                          check=False)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def first_run(good: dict, tmp_path: Path) -> Path:
    """A finished 4-step toy run in ``tmp_path/r`` (trained into a folder that already existed, empty)."""
    good["train"].update(steps=4, checkpoint_every=2, log_every=2)
    (tmp_path / "toy.toml").write_text(dumps(good))
    (tmp_path / "r").mkdir()
    out = cli("run", "toy.toml", "--out", "r", "--set", "train.lr=0.02", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return tmp_path / "r"


def test_a_second_run_into_a_run_folder_is_refused_and_changes_nothing(first_run: Path, tmp_path: Path) -> None:
    before = snapshot(first_run)
    again = cli("run", "toy.toml", "--out", "r", cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        "error: r already holds a run (pipeline.toml, pipeline.lock.json, metrics.jsonl, checkpoints, "
        "model.safetensors, summary.json); continue it with --resume --out r, or start over with --overwrite "
        "(removes everything in r)"
    ]
    assert snapshot(first_run) == before


def test_overwrite_keeps_nothing_of_the_old_run(first_run: Path, tmp_path: Path) -> None:
    (first_run / "notes.txt").write_text("old")
    out = cli("run", "toy.toml", "--out", "r", "--overwrite", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert not (first_run / "notes.txt").exists()
    assert "lr = 0.02" not in (first_run / "pipeline.toml").read_text()  # the old run's override is gone too
    both = cli("run", "toy.toml", "--out", "r", "--overwrite", "--resume", cwd=tmp_path)
    assert both.returncode == 2 and both.stderr.startswith("error: --resume continues a run and --overwrite")


def test_resume_without_a_file_uses_the_run_folders_own_config(first_run: Path, tmp_path: Path) -> None:
    out = cli("run", "--resume", "--out", "r", "--steps", "6", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "trained 6 steps" in out.stdout
    assert "lr = 0.02" in (first_run / "pipeline.toml").read_text()  # the first run's override was kept
    missing = cli("run", "--resume", "--out", "nowhere", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: nowhere holds no pipeline.toml to resume; give the pipeline FILE"
    bare = cli("run", cwd=tmp_path)
    assert bare.returncode == 2 and bare.stderr.startswith("error: run needs a pipeline FILE")


@pytest.mark.parametrize("with_file", [False, True])
def test_resume_refuses_an_override_that_changes_the_models_shape(first_run: Path, tmp_path: Path,
                                                                   with_file: bool) -> None:
    before = snapshot(first_run)
    file = ["toy.toml"] if with_file else []
    out = cli("run", *file, "--resume", "--out", "r", "--steps", "6", "--set", "backbone.embed_dim=16", cwd=tmp_path)
    assert out.returncode == 1
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("error: cannot resume from r/checkpoints/last.pt: the overrides change the model's shape")
    assert "backbone.embed_dim was 32, now 16" in line and "has shape [" in line
    assert snapshot(first_run) == before
    fine = cli("run", *file, "--resume", "--out", "r", "--steps", "6", "--set", "train.lr=0.02", cwd=tmp_path)
    assert fine.returncode == 0, fine.stderr


def test_a_folder_without_a_run_is_trained_into_and_kept(toy_registry: Registry, tmp_path: Path, good: dict) -> None:
    good["train"].update(steps=2, checkpoint_every=2, log_every=1)
    (tmp_path / "toy.toml").write_text(dumps(good))
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "readme.txt").write_text("unrelated")
    out = cli("run", "toy.toml", "--out", "plain", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "plain" / "readme.txt").read_text() == "unrelated"


def _project(root: Path) -> Path:
    """A user's project folder that happens to hold a run file name (summary.json)."""
    (root / "proj" / "src").mkdir(parents=True)
    (root / "proj" / "src" / "main.py").write_text("print('mine')")
    (root / "proj" / "summary.json").write_text("{}")
    return root / "proj"


def _home_like(root: Path) -> Path:
    """A decoy home folder: dotfiles, documents, and a checkpoints/ folder."""
    for sub in ("Documents", "checkpoints"):
        (root / "home" / sub).mkdir(parents=True)
    (root / "home" / ".bashrc").write_text("export PS1=$")
    (root / "home" / "Documents" / "thesis.txt").write_text("years of work")
    return root / "home"


def _link_to_run(root: Path) -> Path:
    """A link to a finished run of ours: --overwrite removes neither."""
    assert cli("run", "toy.toml", "--out", "real", cwd=root).returncode == 0
    (root / "link").symlink_to(root / "real", target_is_directory=True)
    return root / "link"


def _run_holding_its_input(root: Path) -> Path:
    """A finished run of ours whose folder now holds the pipeline file the next run reads."""
    assert cli("run", "toy.toml", "--out", "held", cwd=root).returncode == 0
    (root / "held" / "toy.toml").write_text((root / "toy.toml").read_text())
    return root / "held"


@pytest.mark.parametrize(("setup", "file", "why"), [
    (_project, "toy.toml", "proj carries no registry-core marker, so it was not written as a run output"),
    (_home_like, "toy.toml", "home carries no registry-core marker, so it was not written as a run output"),
    (_link_to_run, "toy.toml", "link is a symbolic link"),
    (_run_holding_its_input, "held/toy.toml", "held is or holds held/toy.toml, an input of this command"),
])
def test_overwrite_removes_only_a_run_folder_we_wrote(good: dict, tmp_path: Path, setup, file: str, why: str) -> None:
    good["train"].update(steps=2, checkpoint_every=2, log_every=2)
    (tmp_path / "toy.toml").write_text(dumps(good))
    out = setup(tmp_path)
    before = {p: snapshot(p) for p in (tmp_path,)}
    done = cli("run", file, "--out", out.name, "--overwrite", cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --overwrite refused: ") and why in lines[0], lines
    assert {p: snapshot(p) for p in (tmp_path,)} == before


@pytest.mark.parametrize("name", ["/tmp/escape", "../up", "a/b", ".hidden", ""])
def test_a_pipeline_name_is_a_name_not_a_path(good: dict, tmp_path: Path, name: str) -> None:
    good["name"] = name
    (tmp_path / "toy.toml").write_text(dumps(good))
    done = cli("run", "toy.toml", "--overwrite", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: ") and "expected a plain name" in done.stderr and repr(name) in done.stderr
    assert not (tmp_path / "runs").exists()


HOLD = """
import sys, time
from registry_core.atomic import writer_lock
with writer_lock(sys.argv[1], "--out"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_run_into_a_folder_being_written_is_refused(good: dict, tmp_path: Path) -> None:
    (tmp_path / "toy.toml").write_text(dumps(good))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "r")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done = cli("run", "toy.toml", "--out", "r", cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: --out {tmp_path / 'r'} is being written by another process (pid {holder.pid}); wait for it to "
        "finish, or choose another path"]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("steps", ["4", "1"])
def test_resuming_a_run_that_has_nothing_left_to_train_is_refused(first_run: Path, tmp_path: Path, steps: str) -> None:
    before = snapshot(first_run)
    out = cli("run", "--resume", "--out", "r", "--steps", steps, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        f"error: cannot resume from r/checkpoints/last.pt: the run is already at step 4 and train.steps is {steps}, "
        "so there is nothing to train; give more steps (--steps 5 or more)")
    assert snapshot(first_run) == before


def test_resuming_on_other_data_is_refused_naming_both(first_run: Path, tmp_path: Path) -> None:
    before = snapshot(first_run)
    out = cli("run", "--resume", "--out", "r", "--steps", "6", "--set", "data.samples=77", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "error: cannot resume r: it trained on toy text (64 samples), this run reads toy text (77 samples), and they "
        "differ (samples); resume with the run's own data, or start over with --overwrite")
    assert snapshot(first_run) == before
