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
    ),
    ComponentSpec(
        kind="recipe",
        name="mae-s2",
        target="registry_gfm.recipes.mae_s2:MaeS2",
        summary="mae-tiny's model on a Sentinel-2 L2A box from Earth Search, ingested through the "
        "earth-search-s2-l2a card (examples/s2-earth-search.toml; network access).",
        modality="imagery",
        tags=("gfm", "mae", "sentinel-2", "stac"),
    ),
    ComponentSpec(
        kind="recipe",
        name="seg-tiny",
        target="registry_gfm.recipes.seg_tiny:SegTiny",
        summary="land-cover segmentation of the Landsat 7 scene (strata.tif, 7 classes) with the frozen mae-tiny "
        "encoder; mIoU next to a random-init encoder and a random forest, in about two minutes on a CPU.",
        modality="imagery",
        tags=("gfm", "demo", "segmentation", "finetuning"),
    ),
    ComponentSpec(
        kind="recipe",
        name="seg-prithvi",
        target="registry_gfm.recipes.seg_prithvi:SegPrithvi",
        summary="seg-tiny's land-cover task on the frozen Prithvi-EO-2.0-tiny-TL encoder pulled from the hub by its "
        "card; mIoU next to a random-init encoder and a random forest.",
        modality="imagery",
        tags=("gfm", "segmentation", "finetuning", "prithvi", "pretrained"),
    ),
]
