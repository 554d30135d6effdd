"""A saved pipeline's folder: ``pipeline.toml``, ``pipeline.lock.json``, ``model.safetensors``, the tokenizer.

Writing and reading the folder layout lives here; composing what was read is the pipeline's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from registry_core._errors import ConfigError, FileFormatError
from registry_core.atomic import atomic_path, file_inside, write_json, write_text
from registry_core.pipeline._compose import load_toml
from registry_core.pipeline._lock import check_lock, read_lock, verify_files
from registry_core.pipeline._toml import dumps

__all__ = [
    "CONFIG_FILE", "LOCK_FILE", "WEIGHTS_FILE", "load_weights", "read_run_config", "read_saved_config", "save_weights",
    "write_config",
]

CONFIG_FILE: Final = "pipeline.toml"
LOCK_FILE: Final = "pipeline.lock.json"
WEIGHTS_FILE: Final = "model.safetensors"


def write_config(out_dir: Path, config: Mapping[str, Any], lock: Mapping[str, Any]) -> None:
    """Write pipeline.toml and the lock into ``out_dir`` (each atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / CONFIG_FILE, dumps(config))
    write_json(out_dir / LOCK_FILE, lock)


def save_weights(model: Any, out_dir: Path) -> Path:
    """The whole model's tensors as ``model.safetensors`` (atomically); returns its path."""
    from safetensors.torch import save_model

    path = out_dir / WEIGHTS_FILE
    with atomic_path(path) as tmp:
        save_model(model, str(tmp))
    return path


def load_weights(model: Any, out_dir: Path) -> None:
    """Fill ``model`` from ``out_dir/model.safetensors`` (nothing is unpickled); a file that is not safetensors,
    or holds other tensors than the model's, is a FileFormatError naming it."""
    from safetensors.torch import load_model

    path = file_inside(out_dir, WEIGHTS_FILE)
    try:
        load_model(model, str(path))
    except Exception as exc:  # safetensors raises its own types for a corrupt header; torch RuntimeError for keys
        raise FileFormatError(f"{path} cannot be loaded into the pipeline's model: {exc}; expected the "
                              "safetensors weights written by Pipeline.save for this pipeline.toml") from exc


def read_run_config(out: Path) -> dict[str, Any]:
    """A run folder's ``pipeline.toml``, its tokenizer's ``path`` made absolute: saved under the folder, so a path
    that is absolute or leaves the folder (an untrusted run folder's) is refused."""
    config = load_toml(file_inside(out, CONFIG_FILE))
    tok = config.get("tokenizer", {})
    if isinstance(tok, dict) and isinstance(tok.get("path"), str):
        tok["path"] = str(file_inside(out, tok["path"]))
    return config


def read_saved_config(out: Path, strict: bool = False) -> dict[str, Any]:
    """The saved config with the tokenizer's relative ``path`` made absolute, after the lock is checked.

    Installed providers are compared with the lock (warnings, or LockMismatch when ``strict``) and every
    recorded file must exist with its recorded sha256.
    """
    if not out.is_dir():
        what = "is not a folder" if out.exists() else "does not exist"
        raise ConfigError(f"run folder {out} {what}; expected a folder written by `python -m registry_core run X.toml "
                          "--out DIR` or Pipeline.save", slot=str(out))
    config = read_run_config(out)
    lock_path = file_inside(out, LOCK_FILE)
    if lock_path.is_file():
        lock = read_lock(lock_path)
        check_lock(lock, strict=strict)
        verify_files(lock, out, lock_path)
    if not file_inside(out, WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{out / WEIGHTS_FILE} is missing; expected the weights written by Pipeline.save")
    return config
