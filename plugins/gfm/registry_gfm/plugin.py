"""Registers registry_gfm's components with registry_core (entry point ``gfm``); imports nothing heavy."""

from __future__ import annotations

from registry_core import ComponentSpec, KindSpec, ModalitySpec, PortSpec, hookimpl
from registry_gfm.data.specs import KINDS
from registry_gfm.data.specs import SPECS as DATA


@hookimpl
def registry_core_kinds() -> list[KindSpec]:
    return KINDS


@hookimpl
def registry_core_components() -> list[ComponentSpec]:
    return list(DATA)  # the model components come with the imagery model stack


@hookimpl
def registry_core_modalities() -> list[ModalitySpec]:
    return [ModalitySpec("imagery", "Multi-spectral raster imagery: bands x height x width (x time).")]


@hookimpl
def registry_core_ports() -> list[PortSpec]:
    """The imagery ports; ``bands`` compares by the band catalog's identity (``B8A`` is ``nir08``)."""
    return [
        PortSpec("bands", "ordered band names of imagery", ("data", "weights"),
                 compare="registry_gfm.bands:same_band_order", explain="registry_gfm.bands:explain_band_difference"),
        PortSpec("patch_size", "side of a square image patch, in pixels", ("data", "tokenizer", "weights")),
        PortSpec("frames", "time steps per sample", ("data", "tokenizer")),
    ]
