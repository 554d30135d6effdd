"""registry_gfm: a registry_core plugin, registered through the entry point ``gfm``.

The names below are its public API for other plugins (a tokenizer that extends ``patch``, an encoder that
reads the patch placement). They are imported on first use: importing ``registry_gfm`` (as listing does,
through ``registry_gfm.plugin``) loads no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_gfm._lazy import lazy_names

if TYPE_CHECKING:
    from registry_gfm.bands import band_key
    from registry_gfm.positions.placement import Placement, as_placement
    from registry_gfm.tokenizers.patch_tokenizer import PatchEmbed, PatchTokenizer
    from registry_gfm.tokenizers.specs import PatchConfig

__version__ = "0.1.0"

#: Public name -> the module that defines it, imported when the name is first read.
_LAZY = {
    "PatchConfig": "registry_gfm.tokenizers.specs",
    "PatchEmbed": "registry_gfm.tokenizers.patch_tokenizer",
    "PatchTokenizer": "registry_gfm.tokenizers.patch_tokenizer",
    "Placement": "registry_gfm.positions.placement",
    "as_placement": "registry_gfm.positions.placement",
    "band_key": "registry_gfm.bands",
}

__getattr__ = lazy_names(__name__, _LAZY)

__all__ = ["PatchConfig", "PatchEmbed", "PatchTokenizer", "Placement", "__version__", "as_placement", "band_key"]
