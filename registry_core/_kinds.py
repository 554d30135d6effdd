"""The core component kinds and where their interfaces live."""

from __future__ import annotations

from typing import Final

from registry_core._spec import KindSpec

__all__ = ["CORE_KINDS"]

_I = "registry_core.interfaces"

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
