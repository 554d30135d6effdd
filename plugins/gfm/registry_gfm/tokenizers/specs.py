"""Config schema and spec of the imagery tokenizer ``patch`` (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, option


@dataclass
class PatchConfig:
    """Multi-spectral patches of C bands x p x p (x tubelet frames), projected linearly (a Conv3d)."""

    patch_size: int = option(16, help="patch side p in pixels (the `patch_size` port)", min=1, max=1024)
    tubelet: int = option(1, help="frames per token (a tubelet of t frames); frames must be a multiple of it", min=1)
    frames: int | None = option(None, help="time steps per chip; None: wired from the data source's `frames`",
                                min=1, wired="frames")
    bands: list[str] | None = option(None, help="ordered band names the patches hold; None: wired from the data "
                                     "source (the `bands` port), else taken from the store when built", wired="bands")
    chip_size: int | None = option(None, help="chip side in pixels; None: wired from the data source (used to "
                                   "count tokens per sample)", min=1, wired="chip_size")
    band_groups: list[list[str]] | None = option(
        None, help="SatMAE-style groups of bands, e.g. [['blue','green','red'],['nir08'],['swir16','swir22']]: one "
        "projection and a learned group embedding per group; tokens per chip grow by the number of groups")
    group_embed_dim: int | None = option(None, help="width of the band-group embedding, added to the last channels "
                                         "of each group's tokens (SatMAE's channel_embed: 256 of 768, the positions "
                                         "filling the rest); None: the full width", min=1)
    pad: bool = option(False, help="reflect-pad chips whose sides are not multiples of patch_size (the padded "
                       "pixels count as invalid); false: such a chip is an error naming the sizes")

    def __post_init__(self) -> None:
        if self.frames is not None and self.frames % self.tubelet:
            raise ValueError(f"option 'frames' {self.frames} is not a multiple of tubelet {self.tubelet}")
        if self.group_embed_dim is not None and self.band_groups is None:
            raise ValueError("option 'group_embed_dim' needs band_groups (it sizes their embedding)")
        if self.band_groups is not None:
            flat = [b for g in self.band_groups for b in g]
            if not self.band_groups or any(not g for g in self.band_groups):
                raise ValueError("option 'band_groups' needs non-empty groups of band names")
            if len(set(flat)) != len(flat):
                raise ValueError(f"option 'band_groups' names a band twice: {self.band_groups}")
        if self.chip_size is not None and self.chip_size % self.patch_size and not self.pad:
            raise ValueError(f"chip_size {self.chip_size} is not a multiple of patch_size {self.patch_size}; "
                             "set pad = true to reflect-pad, or change one of them")

    @property
    def grid(self) -> int:
        """The `grid` port: 2 for one token per patch position, 3 when tokens also run over time."""
        return 3 if self.frames is not None and self.frames // self.tubelet > 1 else 2


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="tokenizer",
        name="patch",
        target="registry_gfm.tokenizers.patch_tokenizer:build_patch",
        summary="Patches of C bands x p x p (x tubelet frames), MAE (p, q, c) order, with valid fractions; "
        "linear (Conv3d) projection, optional SatMAE band groups.",
        modality="imagery",
        tags=("gfm", "patch", "continuous"),
        config=PatchConfig,
        provides={"tokens": "continuous", "patch_size": None, "frames": None, "grid": None, "bands": None},
    )
]
