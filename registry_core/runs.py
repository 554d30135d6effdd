"""A finished run folder of ours read as a source of pretrained weights: untrusted input, so only its
``pipeline.toml`` (parsed as data) and ``model.safetensors`` (no pickle) are read, and only from inside it.

``read_finished_run`` is standard library only, so a weights loader's config can check a run's ports while a
pipeline is composed; ``registry_core.nn.load_run_tensors`` copies the run's tensors of some parts into a new model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry_core.atomic import file_inside

__all__ = ["RUN_WEIGHTS", "read_finished_run"]

#: The weights file every finished run holds.
RUN_WEIGHTS = "model.safetensors"


def read_finished_run(path: str | Path) -> dict[str, Any]:
    """The ``pipeline.toml`` of the run folder ``path``; ValueError when the folder holds no finished run or its
    config is not valid TOML."""
    import tomllib

    folder = Path(path)
    config_file = file_inside(folder, "pipeline.toml")
    if not file_inside(folder, RUN_WEIGHTS).is_file() or not config_file.is_file():
        raise ValueError(f"run folder {path} has no pipeline.toml and model.safetensors; expected a finished run "
                         "(python -m registry_core run X.toml --out FOLDER writes them when it ends)")
    try:
        with config_file.open("rb") as f:
            return tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{config_file} is not valid TOML: {exc}") from None

