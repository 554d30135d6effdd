"""Tokenizers of the imagery model stack: the ``patch`` tokenizer and the patch layout it cuts chips by.

Its public names load on first use: importing the package (as ``plugin.py`` does for the light ``specs``) imports
nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_gfm._lazy import lazy_names

if TYPE_CHECKING:
    from registry_gfm.tokenizers.patch_layout import (
        grid_from_positions,
        patch_grid,
        patchify,
        token_grid_positions,
        unpatchify,
    )
    from registry_gfm.tokenizers.patch_tokenizer import PatchEmbed, PatchTokenizer
    from registry_gfm.tokenizers.specs import PatchConfig

#: Public name -> the module that defines it.
_NAMES = {
    "PatchConfig": "registry_gfm.tokenizers.specs",
    "PatchEmbed": "registry_gfm.tokenizers.patch_tokenizer",
    "PatchTokenizer": "registry_gfm.tokenizers.patch_tokenizer",
    "grid_from_positions": "registry_gfm.tokenizers.patch_layout",
    "patch_grid": "registry_gfm.tokenizers.patch_layout",
    "patchify": "registry_gfm.tokenizers.patch_layout",
    "token_grid_positions": "registry_gfm.tokenizers.patch_layout",
    "unpatchify": "registry_gfm.tokenizers.patch_layout",
}

__getattr__ = lazy_names(__name__, _NAMES)

__all__ = ["PatchConfig", "PatchEmbed", "PatchTokenizer", "grid_from_positions", "patch_grid", "patchify",
           "token_grid_positions", "unpatchify"]
