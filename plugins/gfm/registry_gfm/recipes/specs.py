"""The light manifest of the imagery recipes: named, complete pipeline configs (no heavy imports)."""

from __future__ import annotations

from registry_core import ComponentSpec

SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="recipe",
        name="mae-tiny",
        target="registry_gfm.recipes.mae_tiny:MaeTiny",
        summary="patch + sincos-2d + ViT 4x192 + MAE on the embedded Landsat 7 datacube; pretrains in minutes "
        "on a CPU.",
        modality="imagery",
        tags=("gfm", "demo", "mae"),
    )
]
