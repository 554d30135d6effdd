"""An evaluator's ``out`` stays inside the run folder through the real CLI: ``..`` is refused, an absolute path
only with ``run --outputs-anywhere`` (a resumed run's config may come from a run folder from elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry_core.pipeline._toml import dumps
from registry_core.testing import one_error_line, run_cli

from ..conftest import tiny_pipeline_config


def config_with_out(tmp_path: Path, store: Path, out: str) -> Path:
    config = tiny_pipeline_config(store, evaluators=[{"use": "gfm:reconstruction", "out": out, "batch_size": 4}])
    config["train"]["steps"] = 1
    path = tmp_path / "mae.toml"
    path.write_text(dumps(config))
    return path


@pytest.mark.parametrize(("out", "problem"), [
    ("../beside.png", "evaluator option 'out' '../beside.png' leaves the folder run; give a path inside it (or pass "
                      "--outputs-anywhere to `run` and give an absolute path, to write elsewhere on purpose)"),
    ("ABSOLUTE", "evaluator option 'out' '{abs}' is outside the run folder run; give a path inside it, or pass "
                 "--outputs-anywhere to `run` to write there on purpose"),
])
def test_an_evaluator_out_leaving_the_run_is_refused(lsat7_store: Path, tmp_path: Path, out: str, problem: str) -> None:
    target = str(tmp_path / "elsewhere.png")
    path = config_with_out(tmp_path, lsat7_store, target if out == "ABSOLUTE" else out)
    line = one_error_line(run_cli("run", str(path), "--out", "run", cwd=tmp_path))
    assert line.endswith(problem.format(abs=target)), line
    assert not (tmp_path / "beside.png").exists() and not (tmp_path / "elsewhere.png").exists()


def test_outputs_anywhere_lets_an_absolute_out_be_written(lsat7_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "figures" / "elsewhere.png"
    path = config_with_out(tmp_path, lsat7_store, str(target))
    done = run_cli("run", str(path), "--out", "run", "--outputs-anywhere", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes().startswith(b"\x89PNG")
