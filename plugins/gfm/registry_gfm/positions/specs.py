"""Config schemas and specs of the imagery positional encoders (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, option

_EMBED = "model width; None: wired from the backbone's embed_dim when composed"


@dataclass
class MetadataOptions:
    """The optional metadata encodings shared by the sin-cos encoders; each is off by default."""

    gsd_reference: float | None = option(
        None, help="Scale-MAE ground-sample-distance scaling: patch coordinates are multiplied by GSD / this "
        "(metres per pixel; the chip's GSD comes from the datacube's transform); None: off")
    time_encoding: bool = option(False, help="add a sin-cos encoding of each frame's year and day of year "
                                 "(from the datacube's time), times a learned scale starting at 0.1 (Prithvi-EO-2.0)")
    location_encoding: bool = option(False, help="add a sin-cos encoding of the chip centre's latitude and "
                                     "longitude, times a learned scale starting at 0.1 (Prithvi-EO-2.0)")
    base: float = option(10000.0, help="wavelength base of the sin-cos frequencies", min=2.0)
    table_dim: int | None = option(None, help="channels the position table fills, the first ones; the rest get no "
                                   "position (SatMAE leaves its last channel_embed channels to the band-group "
                                   "embedding: 512 of 768); None: all", min=4)


def _check_table_dim(table_dim: int | None, embed_dim: int | None, multiple: int, name: str) -> None:
    if table_dim is None:
        return
    if table_dim % multiple:
        raise ValueError(f"option 'table_dim' {table_dim}: {name} needs a multiple of {multiple}")
    if embed_dim is not None and table_dim > embed_dim:
        raise ValueError(f"option 'table_dim' {table_dim} is wider than embed_dim {embed_dim}")


@dataclass
class SinCos2DConfig(MetadataOptions):
    """Fixed 2-D sin-cos positions (MAE): half the channels encode the column (w), half the row (h)."""

    embed_dim: int | None = option(None, help=_EMBED, min=4, wired="embed_dim")

    def __post_init__(self) -> None:
        if self.embed_dim is not None and self.embed_dim % 4:
            raise ValueError(f"sincos-2d needs embed_dim divisible by 4, got {self.embed_dim}")
        _check_table_dim(self.table_dim, self.embed_dim, 4, "sincos-2d")


@dataclass
class SinCos3DConfig(MetadataOptions):
    """Fixed 3-D sin-cos positions over (t, h, w), split as Prithvi: w 6/16, h 6/16, t 4/16 of the channels."""

    embed_dim: int | None = option(None, help=_EMBED, min=16, wired="embed_dim")

    def __post_init__(self) -> None:
        if self.embed_dim is not None and self.embed_dim % 16:
            raise ValueError(f"sincos-3d needs embed_dim divisible by 16 (w 6/16, h 6/16, t 4/16), got {self.embed_dim}")
        _check_table_dim(self.table_dim, self.embed_dim, 16, "sincos-3d")


@dataclass
class Learned2DConfig:
    """A learned table of one vector per patch position, bicubic-interpolated when the grid changes."""

    embed_dim: int | None = option(None, help=_EMBED, min=1, wired="embed_dim")
    grid_size: list[int] = option([14, 14], help="patch grid (rows, columns) the table is trained at")
    init_std: float = option(0.02, help="standard deviation of the table's normal initialisation", min=0.0)

    def __post_init__(self) -> None:
        if len(self.grid_size) != 2 or min(self.grid_size) < 1:
            raise ValueError(f"option 'grid_size' must be [rows, columns] >= 1, got {self.grid_size}")


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="positional_encoder",
        name="sincos-2d",
        target="registry_gfm.positions.sincos:build_2d",
        summary="Fixed 2-D sin-cos patch positions equal to MAE's table (w half first), recomputed for any grid; "
        "optional GSD / time / location encodings.",
        modality="imagery",
        tags=("gfm", "2d", "additive"),
        config=SinCos2DConfig,
        provides={"position_mode": "additive", "grid": 2},
        requires={"embed_dim": None},
    ),
    ComponentSpec(
        kind="positional_encoder",
        name="sincos-3d",
        target="registry_gfm.positions.sincos:build_3d",
        summary="Fixed 3-D sin-cos (t, h, w) positions split as Prithvi (w 6/16, h 6/16, t 4/16); optional "
        "GSD / time / location encodings.",
        modality="imagery",
        tags=("gfm", "3d", "additive"),
        config=SinCos3DConfig,
        provides={"position_mode": "additive"},
        requires={"embed_dim": None, "grid": [2, 3]},
    ),
    ComponentSpec(
        kind="positional_encoder",
        name="learned-2d",
        target="registry_gfm.positions.learned:build",
        summary="Learned 2-D table of patch positions, bicubic-interpolated to other grids.",
        modality="imagery",
        tags=("gfm", "2d", "additive", "learned"),
        config=Learned2DConfig,
        provides={"position_mode": "additive", "grid": 2},
        requires={"embed_dim": None},
    ),
]
