"""``from-run`` reads a pretraining run folder that may come from elsewhere: only the files inside it. A
``model.safetensors`` or ``pipeline.toml`` that is a link out of the folder is refused with one ``error:`` line
through the real CLI, and nothing is trained."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from registry_core.pipeline._toml import dumps
from registry_core.testing import one_error_line, run_cli

from ..conftest import finetune_config


@pytest.mark.parametrize("name", ["model.safetensors", "pipeline.toml"])
def test_from_run_refuses_a_file_linked_out_of_the_run(lsat7_store: Path, tiny_mae_run: Path, tmp_path: Path,
                                                       name: str) -> None:
    run = Path(shutil.copytree(tiny_mae_run, tmp_path / "pretrained"))
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"a decoy secret")
    (run / name).unlink()
    (run / name).symlink_to(secret)
    config = tmp_path / "seg.toml"
    config.write_text(dumps(finetune_config(lsat7_store, run)))
    line = one_error_line(run_cli("run", str(config), "--out", "seg", cwd=tmp_path))
    assert line.endswith(f"run folder {run}: {name} is a link to {secret.resolve()}, outside the folder; a run folder "
                         "is read only from the files inside it"), line
    assert not (tmp_path / "seg").exists()
