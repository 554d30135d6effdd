"""The configuration reference page: pipeline file layout, ``[train]``, ``--set`` and environment variables.

The slots, top-level keys, ``[train]`` options and environment variables come from the code that reads
them (``_compose``, ``_train_config``, ``_registry``); the prose says how they behave.
"""

from __future__ import annotations

import argparse
from typing import Any

from registry_core._registry import ENVIRONMENT, Registry
from registry_core._schema import describe_fields
from registry_core.docs._markdown import code, options_table, page, table
from registry_core.pipeline._compose import LIST_SLOTS, META_KEYS, REQUIRED_SLOTS, SLOTS
from registry_core.pipeline._train_config import TrainConfig

__all__ = ["configuration_page"]


def _set_commands(parser: argparse.ArgumentParser) -> list[str]:
    """The sub-commands that take ``--set`` overrides."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return [name for name, sub in action.choices.items()
                    if any("--set" in a.option_strings for a in sub._actions)]
    return []


def _train_options() -> list[dict[str, Any]]:
    return [{"name": f.name, "type": f.type, "default": f.default, "required": f.required, "help": f.help,
             "min": f.min, "max": f.max, "choices": f.choices, "wired": f.wired} for f in describe_fields(TrainConfig)]


def configuration_page(reg: Registry, parser: argparse.ArgumentParser) -> str:
    """The whole configuration reference for the registry's kinds and recipes."""
    slot_rows = [[code(f"[{slot}]"), f"[{kind}](components/{kind}/index.md)", "yes" if slot in REQUIRED_SLOTS else "no",
                  "a table: `use = \"<name>\"` and the component's options"] for slot, kind in SLOTS.items()]
    slot_rows += [[code(f"[[{slot}]]"), f"[{kind}](components/{kind}/index.md)", "no",
                   "an array of tables, each `use = \"<name>\"` and its options"] for slot, kind in LIST_SLOTS.items()]
    recipes = reg.list(kind="recipe")
    set_in = ", ".join(code(c) for c in _set_commands(parser))
    lines = [
        "# Configuration reference", "",
        "A pipeline is a TOML file (or the same structure as a Python dict): one table per component slot, a few "
        "top-level keys and `[train]`. Composition resolves every name, validates every option against its "
        "schema (all problems are reported at once, each naming the slot and key), wires shared values and "
        "checks the contracts ([contracts guide](../contracts.md)) before any component code is imported.", "",
        "## Component slots", "",
        "Slots in chain order; `use` names a component of the slot's kind by short name or qualified id "
        "(`plugin:name`). Each component's options are listed on its page.", "",
        *table(["slot", "kind", "required", "form"], slot_rows), "",
        "## Top-level keys", "",
        *table(["key", "meaning"], [[code(k), v] for k, v in META_KEYS.items()]), "",
        "## Recipes", "",
        "`recipe = \"<name>\"` starts from a recipe's config. A table of the file whose `use` is the recipe's "
        "(or that has no `use`) is merged over the recipe's table key by key; a table naming another "
        "component, and every other key, replaces the recipe's. `--set` overrides apply to the file before "
        "the merge.", "",
        *table(["recipe", "summary"], [[f"[{code(s.name)}](components/recipe/{s.name}.md)", s.summary] for s in recipes]),
        "",
        "```toml", "recipe = \"" + (recipes[0].name if recipes else "<recipe>") + "\"",
        "", "[train]", "steps = 100", "```", "",
        "## `[train]`", "",
        (TrainConfig.__doc__ or "").strip(), "",
        *options_table(_train_options(), "ports.md"), "",
        "## Overrides: `--set`", "",
        f"{set_in} take `--set SLOT.KEY=VALUE`, repeatable and applied in order. `SLOT.KEY` is a dotted path "
        "into the file's tables (missing tables are created; `train.lr`, `data.store`, `backbone.depth`); "
        "`VALUE` is read as a TOML value (`2`, `0.002`, `true`, `[0.9, 0.99]`, `\"text\"`), and a bare word "
        "that is not valid TOML is taken as a string. Entries of an array of tables (`[[evaluators]]`) cannot be "
        "overridden.", "",
        "```bash",
        "python -m registry_core run examples/gpt-tiny.toml --set backbone.depth=2 --set train.lr=0.002 \\",
        "    --set 'train.betas=[0.9, 0.99]' --set train.precision=bf16",
        "```", "",
        "## Environment variables", "",
        *table(["variable", "effect"], [[code(k), v] for k, v in ENVIRONMENT.items()]), "",
        "`Registry(autoload=..., plugins=[...], blocked=[...], use_env=False)` is the programmatic equivalent. "
        "Under `torchrun`, `run` reads `RANK`, `WORLD_SIZE` and `LOCAL_RANK` (and torch.distributed "
        "`MASTER_ADDR` / `MASTER_PORT`) to join the process group.",
    ]
    return page(lines)
