"""Registers registry_gfm's components with registry_core (entry point ``gfm``); imports nothing heavy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_core import CommandSpec, ComponentSpec, KindSpec, ModalitySpec, PortSpec, hookimpl
from registry_gfm.backbones.specs import SPECS as BACKBONES
from registry_gfm.chips.specs import SPECS as CHIPS
from registry_gfm.evaluators.specs import SPECS as EVALUATORS
from registry_gfm.heads.specs import SPECS as HEADS
from registry_gfm.ingest.cards import SPECS as STAC_CARDS
from registry_gfm.ingest.specs import KINDS
from registry_gfm.ingest.specs import SPECS as INGEST
from registry_gfm.objectives.specs import SPECS as OBJECTIVES
from registry_gfm.positions.specs import SPECS as POSITIONS
from registry_gfm.recipes.specs import SPECS as RECIPES
from registry_gfm.tokenizers.specs import SPECS as TOKENIZERS
from registry_gfm.weights.cards import SPECS as PRITHVI_CARDS
from registry_gfm.weights.specs import SPECS as WEIGHTS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from registry_core.report import ReportFigure, ReportRun


@hookimpl
def registry_core_kinds() -> list[KindSpec]:
    return KINDS


@hookimpl
def registry_core_components() -> list[ComponentSpec]:
    return [*INGEST, *STAC_CARDS, *CHIPS, *TOKENIZERS, *POSITIONS, *BACKBONES, *OBJECTIVES, *HEADS, *EVALUATORS, *WEIGHTS, *PRITHVI_CARDS,
            *RECIPES]


@hookimpl
def registry_core_modalities() -> list[ModalitySpec]:
    return [ModalitySpec("imagery", "Multi-spectral raster imagery: bands x height x width (x time).",
                         server="registry_gfm.serve:imagery_server",
                         serve_arguments="registry_gfm.commands:add_imagery_serve_arguments")]


@hookimpl
def registry_core_ports() -> list[PortSpec]:
    """The imagery ports; ``bands`` compares by the band catalog's identity (``B8A`` is ``nir08``)."""
    return [
        PortSpec("bands", "ordered band names of imagery", ("data", "weights"),
                 compare="registry_gfm.bands:same_band_order", explain="registry_gfm.bands:explain_band_difference"),
        PortSpec("patch_size", "side of a square image patch, in pixels", ("data", "tokenizer", "weights")),
        PortSpec("layer_norm_eps", "LayerNorm epsilon the pretrained weights were trained with", ("weights",)),
        PortSpec("frames", "time steps per sample", ("data", "tokenizer")),
        PortSpec("chip_size", "side of a square image chip, in pixels", ("data",)),
        PortSpec("ignore_index", "label value of unlabelled pixels, skipped by losses and metrics", ("data",)),
    ]


@hookimpl
def registry_core_commands() -> list[CommandSpec]:
    return [
        CommandSpec("predict", "run a trained imagery pipeline over a whole scene into a COG or Zarr raster",
                    arguments="registry_gfm.commands:add_predict_arguments", handler="registry_gfm.commands:predict"),
        CommandSpec("vectorize", "turn a class-map raster into polygons: GeoPackage, GeoJSON, FlatGeobuf or GeoParquet",
                    arguments="registry_gfm.commands:add_vectorize_arguments",
                    handler="registry_gfm.commands:vectorize"),
    ]


@hookimpl
def registry_core_report_figures(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """An imagery run's evaluator figures and, for a pretraining run, its 2-D positions and ViT attention."""
    if not run.uses("registry_gfm", "backbone"):
        return []
    from registry_gfm.report.evaluation import evaluation_figures
    from registry_gfm.report.model import model_figures

    return [*evaluation_figures(run, out_dir), *model_figures(run, out_dir)]


@hookimpl
def registry_core_report_metrics(run: ReportRun) -> Mapping[str, float]:
    """Reconstruction error, probe accuracy and the finetuned / random-init / random-forest mIoU."""
    from registry_gfm.report.key_figures import key_figures

    return key_figures(run)


@hookimpl
def registry_core_report_artifact(path: Path, runs: Sequence[ReportRun], out_dir: Path) -> list[ReportFigure] | None:
    """A land-cover map ``predict`` wrote, next to its labels and the RGB scene, or its polygons over the scene;
    None for other files."""
    from registry_gfm.report.landcover import landcover_figures, polygon_figures

    return landcover_figures(path, runs, out_dir) or polygon_figures(path, runs, out_dir)
