"""Building, training, evaluating, saving and loading a toy pipeline; the check and run commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from registry_core import LockMismatch, OutputPathError, Pipeline, Registry, UsageError, compose
from registry_core.pipeline._toml import dumps


def test_build_fit_lowers_the_loss_and_evaluates(toy_registry: Registry, good: dict, tmp_path: Path) -> None:
    p = compose(good, toy_registry).build()
    assert p.data.prepared == 1
    assert p.objective.head.weight is p.parts.embed.weight  # bound and tied
    before = p.evaluate()["toy:toy-loss"]["loss"]
    result = p.fit(tmp_path / "run")
    after = p.evaluate()["toy:toy-loss"]["loss"]
    assert result.step == 30 and after < before * 0.5
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in lines)
    assert (tmp_path / "run" / "pipeline.toml").is_file() and (tmp_path / "run" / "pipeline.lock.json").is_file()


def test_save_and_load_round_trip(toy_registry: Registry, good: dict, tmp_path: Path) -> None:
    import torch

    p = compose(good, toy_registry).build()
    p.fit(tmp_path / "run")
    saved = p.save(tmp_path / "saved")
    lock = json.loads((saved / "pipeline.lock.json").read_text())
    assert {c["id"] for c in lock["components"]} >= {"toy:toy-tok", "toy:toy-decoder", "toy:toy-loss"}
    assert lock["components"][0]["distribution"] == "rc-toy" and lock["components"][0]["version"] == "0.3.0"
    assert "tokenizer:vocab.txt" in lock["files"] and len(lock["files"]["tokenizer:vocab.txt"]["sha256"]) == 64

    q = Pipeline.load(saved, toy_registry)
    batch = {k: torch.stack([p.data.dataset("val")[i][k] for i in range(4)]) for k in ("input_ids", "targets")}
    with torch.no_grad():
        assert torch.equal(p.model(batch)[0], q.model(batch)[0])
        fresh = compose(good, toy_registry).build()
        assert not torch.equal(fresh.model(batch)[0], q.model(batch)[0])  # training changed the weights
        # building a loaded pipeline again (preparing its data too) keeps the trained weights
        q.build()
        assert torch.equal(p.model(batch)[0], q.model(batch)[0])

    # a changed tokenizer file no longer matches the lock
    (saved / "tokenizer" / "vocab.txt").write_text("tampered")
    with pytest.raises(LockMismatch, match="sha256"):
        Pipeline.load(saved, toy_registry)


def test_load_warns_or_fails_on_provider_version(toy_registry: Registry, good: dict, tmp_path: Path) -> None:
    p = compose(good, toy_registry).build()
    saved = p.save(tmp_path / "saved")
    lock_path = saved / "pipeline.lock.json"
    lock = json.loads(lock_path.read_text())
    lock["components"][0]["version"] = "0.0.1"
    lock_path.write_text(json.dumps(lock))
    with pytest.warns(UserWarning, match=r"locked with rc-toy 0\.0\.1 but 0\.3\.0 is installed"):
        Pipeline.load(saved, toy_registry)
    with pytest.raises(LockMismatch, match=r"rc-toy 0\.0\.1"):
        Pipeline.load(saved, toy_registry, strict=True)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True, cwd=cwd,
                          check=False)


def test_check_command(toy_registry: Registry, good: dict, tmp_path: Path) -> None:
    path = tmp_path / "toy.toml"
    path.write_text(dumps(good))
    out = cli("check", str(path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "toy:toy-learned" in out.stdout and "embed_dim=32 (from backbone)" in out.stdout
    good["backbone"]["use"] = "toy-encoder"
    path.write_text(dumps(good))
    bad = cli("check", str(path), cwd=tmp_path)
    assert bad.returncode == 1
    assert "objective `toy-next` requires causal=true but backbone `toy-encoder` provides causal=false" in bad.stderr
    data = json.loads(cli("check", str(path), "--json", cwd=tmp_path).stdout)
    assert data["ok"] is False and data["errors"][0]["slot"] == "objective"


def test_check_imports_nothing_heavy(toy_registry: Registry, good: dict, tmp_path: Path) -> None:
    path = tmp_path / "toy.toml"
    path.write_text(dumps(good))
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['registry_core', 'check', {str(path)!r}]\n"
        "try:\n    runpy.run_module('registry_core', run_name='__main__')\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "print(sorted(m for m in ('torch', 'numpy', 'rc_toy_parts') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _toy_file(good: dict, tmp_path: Path) -> Path:
    path = tmp_path / "toy.toml"
    path.write_text(dumps(good))
    return path


def test_run_command_trains_and_writes_the_run_folder(toy_registry: Registry, good: dict, tmp_path: Path) -> None:
    out = cli("run", str(_toy_file(good, tmp_path)), "--out", "r", "--steps", "10", "--set", "train.lr=0.02",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = tmp_path / "r"
    assert "trained 10 steps" in out.stdout and "toy:toy-loss" in out.stdout
    for name in ("metrics.jsonl", "pipeline.toml", "pipeline.lock.json", "model.safetensors", "checkpoints/last.pt",
                 "summary.json"):
        assert (run / name).is_file(), name
    assert "lr = 0.02" in (run / "pipeline.toml").read_text()


def test_run_command_resumes_a_run_to_more_steps(toy_registry: Registry, good: dict, tmp_path: Path) -> None:
    path = _toy_file(good, tmp_path)
    assert cli("run", str(path), "--out", "r", "--steps", "10", cwd=tmp_path).returncode == 0
    again = cli("run", str(path), "--out", "r", "--steps", "20", "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["step"] == 20


def test_run_command_reports_a_bad_override_in_one_line(toy_registry: Registry, good: dict, tmp_path: Path) -> None:
    bad = cli("run", str(_toy_file(good, tmp_path)), "--set", "backbone.embed_dim=abc", cwd=tmp_path)
    assert bad.returncode == 1 and "[backbone.embed_dim] expected an int" in bad.stderr
    assert not (tmp_path / "runs").exists()


def test_pipeline_run_is_the_run_command_in_python(toy_registry: Registry, good: dict, tmp_path: Path) -> None:
    good["train"]["steps"] = 6
    result = compose(good, toy_registry).run(tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert result.summary() == summary and summary["step"] == 6 and result.main
    assert set(result.evaluators) == {"toy:toy-loss"} and result.val is not None
    assert Pipeline.load(tmp_path / "r", toy_registry).built
    with pytest.raises(OutputPathError, match="already holds a run"):
        compose(good, toy_registry).run(tmp_path / "r")
    good["train"]["steps"] = 8
    with pytest.warns(UserWarning, match="the cosine decay continues"):
        assert compose(good, toy_registry).run(tmp_path / "r", resume=True).step == 8
    assert compose(good, toy_registry).run(tmp_path / "r", overwrite=True).step == 8
    records = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "loss" in r]
    assert sorted(steps) == sorted(set(steps)) and max(steps) == 8  # started over: no step logged twice
    with pytest.raises(UsageError, match="give one of them"):
        compose(good, toy_registry).run(tmp_path / "r", resume=True, overwrite=True)


RUN_HOOKS = """
from registry_core import hookimpl

@hookimpl
def registry_core_run_arguments(parser):
    parser.add_argument("--shout", default="", help="a word to shout after the run")

@hookimpl
def registry_core_run_extras(pipeline, result, args):
    return {"shout": f"{args.shout.upper()} after {result.step} steps of {pipeline.name}"} if args.shout else None
"""

BROKEN_RUN_HOOK = """
from registry_core import hookimpl

@hookimpl
def registry_core_run_arguments(parser):
    raise RuntimeError("no options today")
"""


def test_plugins_add_run_options_and_output(toy_registry: Registry, good: dict, tmp_path: Path, make_dist) -> None:
    make_dist("shout", RUN_HOOKS)
    path = _toy_file(good, tmp_path)
    out = cli("run", str(path), "--out", "r", "--steps", "4", "--shout", "done", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "shout: DONE after 4 steps of toy"
    js = cli("run", str(path), "--out", "r2", "--steps", "4", "--shout", "ok", "--json", cwd=tmp_path)
    assert json.loads(js.stdout)["shout"] == "OK after 4 steps of toy"
    assert "shout" not in json.loads((tmp_path / "r2" / "summary.json").read_text())  # the run's record is the core's


def test_a_plugin_failing_to_add_run_options_is_a_warning(toy_registry: Registry, good: dict, tmp_path: Path,
                                                          make_dist) -> None:
    make_dist("broken-run", BROKEN_RUN_HOOK)
    out = cli("run", str(_toy_file(good, tmp_path)), "--out", "r", "--steps", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "warning: plugin 'broken-run' failed to add its run options: RuntimeError: no options today" in out.stderr


RUN_THEN_CHECK_THREADS = """
import sys
from pathlib import Path

from registry_core.cli import main

code = main(sys.argv[1:])
left = [n for n in ((t / "comm").read_text().strip() for t in Path("/proc/self/task").iterdir()) if "gloo" in n]
if left:
    print(f"gloo threads alive after run: {left}", file=sys.stderr)
sys.exit(code or (3 if left else 0))
"""


@pytest.mark.slow
def test_run_under_torchrun_on_two_ranks(toy_registry: Registry, good: dict, tmp_path: Path) -> None:
    path = tmp_path / "toy.toml"
    good["train"]["steps"] = 6
    path.write_text(dumps(good))
    one = cli("run", str(path), "--out", "one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    # The CLI's main, then a look at the process's threads: the group run created must be freed (its gloo
    # threads joined) before the interpreter exits, or a finished run can abort at exit (SIGABRT).
    wrapper = tmp_path / "run_then_check_threads.py"
    wrapper.write_text(RUN_THEN_CHECK_THREADS)
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(wrapper), "run", str(path), "--out", "two"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    losses = [[json.loads(x)["loss"] for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()
               if "loss" in json.loads(x)] for d in ("one", "two")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4, abs=1e-5)
    assert (tmp_path / "two" / "model.safetensors").is_file()


def test_build_names_the_component_and_the_member_it_lacks(toy_registry: Registry, good: dict, make_dist) -> None:
    from registry_core import ComponentInterfaceError

    make_dist("flat", '''
from registry_core import ComponentSpec, hookimpl

def build(config):
    from torch import nn

    class NoCausal(nn.Module):  # has embed_dim and forward, but not `causal`
        def __init__(self):
            super().__init__()
            self.embed_dim = config.embed_dim
            self.lin = nn.Linear(config.embed_dim, config.embed_dim)

        def forward(self, x, positional=None, positions=None):
            return self.lin(x)

    return NoCausal()

@hookimpl
def registry_core_components():
    return [ComponentSpec("backbone", "flat", f"{__name__}:build", "A backbone lacking a member.",
                          config="rc_toy_plugin:BackboneConfig",
                          provides={"embed_dim": None, "causal": True, "position_modes": ["additive"]})]
''')
    good["backbone"]["use"] = "flat"
    pipeline = compose(good, Registry(use_env=False))
    with pytest.raises(ComponentInterfaceError, match=r"\[backbone\] backbone 'flat:flat' \(built by rc_test_flat_\w+:build\) "
                                                      r"lacks 'causal', which every backbone has"):
        pipeline.build()


def test_tokens_per_sample_and_units_come_from_the_components(toy_registry: Registry, good: dict, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import rc_toy_parts

    text = compose(good, toy_registry).build()
    assert text.model.tokens_per_sample == 8  # the data's seq_len
    assert text.trainer(tmp_path / "a").units == "tokens"
    # An image tokenizer knows its tokens per sample (patches per chip); MFU then follows from the backbone.
    monkeypatch.setattr(rc_toy_parts.ToyTokenizer, "tokens_per_sample", 12, raising=False)
    patches = compose(good, toy_registry).build()
    assert patches.model.tokens_per_sample == 12
    assert patches.model.flops_per_token == patches.component("backbone").flops_per_token(12)
    # A sample that no component counts in tokens is counted in the data's own unit.
    monkeypatch.setattr(rc_toy_parts.ToyData, "sample_unit", "chips", raising=False)
    chips = compose(good, toy_registry).build()
    assert chips.model.sample_unit == "chips"
    chips.model.tokens_per_sample = None
    assert chips.trainer(tmp_path / "b").units == "chips"
