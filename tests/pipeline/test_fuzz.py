"""Random configs: composition only ever raises ConfigError, and every issue names its slot."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry_core import ConfigError, Pipeline, Registry, compose

NAMES = ["toy-text", "toy-image", "toy-tok", "toy-patch", "toy-learned", "toy-rotary", "toy-2d", "toy-decoder",
         "toy-encoder", "toy-next", "toy-mae", "toy-weights", "toy-loss", "toy:toy-tok", "nope", "x:y", ""]
KEYS = ["vocab", "seq_len", "samples", "bands", "vocab_size", "path", "grid", "embed_dim", "max_positions",
        "hidden", "batches", "steps", "lr", "batch_size", "betas", "no_decay", "junk"]

leaves = st.none() | st.booleans() | st.integers(-5, 300) | st.floats(allow_nan=True) | st.text(max_size=6)
values = st.recursive(leaves, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                      max_leaves=6)
tables = st.fixed_dictionaries(
    {}, optional={"use": st.sampled_from(NAMES) | values, **{k: values for k in KEYS}}
)
configs = st.dictionaries(
    st.sampled_from(["data", "tokenizer", "positional", "backbone", "objective", "head", "weights", "evaluators",
                     "train", "name", "recipe", "description", "bogus"]),
    tables | st.lists(tables, max_size=2) | values,
    max_size=9,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=configs)
def test_random_configs_only_raise_config_error(toy_registry: Registry, config: dict[str, Any]) -> None:
    try:
        result = compose(config, toy_registry)
    except ConfigError as exc:
        assert exc.issues
        assert all(isinstance(i.slot, str) and i.slot for i in exc.issues)
    else:
        assert isinstance(result, Pipeline)
