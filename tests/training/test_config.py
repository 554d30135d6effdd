"""TrainConfig: validated like any component config, before torch is imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from registry_core import ConfigError
from registry_core._schema import validate_options
from registry_core.pipeline._train_config import TrainConfig


def _issues(options: dict[str, object]) -> list[str]:
    obj, issues = validate_options(TrainConfig, options, slot="train")
    assert obj is None
    return [str(i) for i in issues]


def test_defaults_and_valid_table() -> None:
    cfg, issues = validate_options(TrainConfig, {"steps": 10, "lr": 1, "betas": [0.9, 0.99]}, slot="train")
    assert issues == [] and cfg is not None
    assert cfg.lr == 1.0 and cfg.betas == (0.9, 0.99) and cfg.precision == "fp32"


def test_unknown_key_wrong_type_and_range_are_all_reported() -> None:
    issues = _issues({"stepz": 10, "lr": "fast", "warmup_steps": -1, "precision": "fp16"})
    assert len(issues) == 4
    joined = "\n".join(issues)
    assert "[train.stepz]" in joined and "did you mean 'steps'" in joined
    assert "[train.lr] expected a number" in joined
    assert "[train.warmup_steps] must be >= 0" in joined
    assert "[train.precision] must be one of 'fp32', 'bf16'" in joined


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"batch_size": 30, "micro_batch_size": 8}, "batch_size 30 is not a multiple of micro_batch_size 8"),
        ({"lr": 1e-4, "min_lr": 1e-3}, "min_lr 0.001 is above lr 0.0001"),
        ({"betas": [0.9, 1.0]}, "betas (0.9, 1.0) must be two numbers in [0, 1)"),
        ({"no_decay": ["norms", "heads"]}, "no_decay has 'heads'"),
    ],
)
def test_cross_field_errors_name_the_keys(options: dict[str, object], needle: str) -> None:
    (issue,) = _issues(options)
    assert issue.startswith("[train]") and needle in issue


def test_accumulation_steps_per_rank_count() -> None:
    cfg = TrainConfig(batch_size=32, micro_batch_size=4)
    assert [cfg.accumulation_steps(w) for w in (1, 2, 4, 8)] == [8, 4, 2, 1]
    with pytest.raises(
        ConfigError,
        match=r"\[train.batch_size\] batch_size 32 does not split evenly over "
        r"micro_batch_size 4 x 3 ranks",
    ):
        cfg.accumulation_steps(3)
    auto = TrainConfig(batch_size=12)
    assert auto.micro_batch(4) == 3 and auto.accumulation_steps(4) == 1
    with pytest.raises(ConfigError, match="over 5 ranks"):
        auto.accumulation_steps(5)


def test_config_module_and_core_import_no_torch() -> None:
    code = "import registry_core, registry_core.pipeline._train_config, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
