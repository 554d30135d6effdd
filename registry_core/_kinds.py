"""What the core itself declares: component kinds (and where their interfaces live), modalities, commands.

Plugins add kinds, modalities, ports and commands through hooks; the core names no stack.
"""

from __future__ import annotations

from typing import Final

from registry_core._spec import KindSpec, ModalitySpec

__all__ = ["CORE_COMMANDS", "CORE_DISTRIBUTION", "CORE_KINDS", "CORE_MODALITIES"]

_I = "registry_core.interfaces"

#: The core's own distribution (``docs`` names it as the provider of the core's kinds, ports and commands).
CORE_DISTRIBUTION: Final = "registry-core"

#: Kinds every registry knows; plugins add more through ``registry_core_kinds``.
CORE_KINDS: Final[dict[str, KindSpec]] = {
    k.name: k
    for k in (
        KindSpec("data_source", "Raw data made ready for training (text shards, imagery datacubes).", f"{_I}:DataSource"),
        KindSpec("tokenizer", "Data-side encoding plus model-side embedding (BPE, image patches).", f"{_I}:Tokenizer"),
        KindSpec("positional_encoder", "Positions: additive, rotary or attention bias; 1D, 2D or 3D.", f"{_I}:PositionalEncoder"),
        KindSpec("backbone", "A transformer stack: causal decoder or bidirectional encoder.", f"{_I}:Backbone"),
        KindSpec("objective", "Pretraining head plus loss (next-token, masked LM, MAE).", f"{_I}:Objective"),
        KindSpec("head", "A finetuning head over backbone features.", f"{_I}:Head"),
        KindSpec("evaluator", "Scores a pipeline on a split (perplexity, reconstruction error).", f"{_I}:Evaluator"),
        KindSpec("weights", "Pretrained weights from local files, with their metadata.", f"{_I}:Weights"),
        KindSpec("recipe", "A named, complete pipeline config.", f"{_I}:Recipe"),
    )
}

#: Modalities every registry knows; ``text`` and ``imagery`` come from the plugins that own them.
CORE_MODALITIES: Final[dict[str, ModalitySpec]] = {
    "any": ModalitySpec("any", "Works with every modality (positional encoders, backbones, objectives...)."),
}

#: The core's own CLI sub-commands; a plugin command of one of these names is ignored (and reported).
CORE_COMMANDS: Final = ("list", "show", "plugins", "doctor", "check", "run", "ingest", "export", "report", "pull", "serve",
                         "docs")
