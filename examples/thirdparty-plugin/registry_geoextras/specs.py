"""Config schemas, the kind and the specs of this plugin: what listing reads (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, KindSpec, option
from registry_gfm import PatchConfig

__all__ = ["KINDS", "SPECS", "GeoPatchConfig", "NDVIConfig", "Rope2DConfig"]


@dataclass
class Rope2DConfig:
    """Axial 2-D rotary positions: half of each head turns with the patch row, half with the column."""

    embed_dim: int | None = option(None, help="model width; None: wired from the backbone's embed_dim", min=4,
                                   wired="embed_dim")
    heads: int | None = option(None, help="attention heads; None: wired from the backbone's heads", min=1,
                               wired="heads")
    base: float = option(100.0, help="frequency base θ: pair i of an axis turns by coordinate·θ^(-4i/head_dim) "
                         "(100 as RoPE-ViT's axial variant: patch grids are short)", min=2.0)

    def __post_init__(self) -> None:
        if self.embed_dim is not None and self.heads is not None:
            if self.embed_dim % self.heads:
                raise ValueError(f"embed_dim {self.embed_dim} is not divisible by heads {self.heads}")
            if (self.embed_dim // self.heads) % 4:
                raise ValueError(f"rope-2d needs a head_dim divisible by 4 (two axes, each in pairs), got "
                                 f"{self.embed_dim // self.heads} (embed_dim {self.embed_dim} / heads {self.heads})")


@dataclass
class GeoPatchConfig(PatchConfig):
    """The bundled ``patch`` options, plus a LayerNorm on each token and optional spectral-index channels."""

    patch_norm: bool = option(True, help="LayerNorm on each token after the projection (Swin's patch_norm): token "
                              "scale stays steady whatever the bands' ranges; false: the bundled projection alone")
    indices: list[str] = option([], help="spectral_index components (`list spectral_index`), e.g. ['ndvi']: each "
                                "adds a channel computed per pixel from the physical band values before the "
                                "projection; the objective still reconstructs the bands only", ref="spectral_index")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.indices and self.band_groups is not None:
            raise ValueError("options 'indices' and 'band_groups' do not combine: index channels belong to no band "
                             "group; drop one of them")
        if len(set(self.indices)) != len(self.indices):
            raise ValueError(f"option 'indices' names an index twice: {self.indices}")


@dataclass
class NDVIConfig:
    """Normalised difference vegetation index, (nir - red) / (nir + red)."""

    eps: float = option(1e-6, help="smallest |nir + red| divided by (darker pixels give 0 rather than noise)", min=0.0)


#: The kind this plugin declares; its components are used through the ``patch`` tokenizer's ``indices``.
KINDS: list[KindSpec] = [
    KindSpec("spectral_index", "A per-pixel index of physical band values (NDVI, NDWI, ...), as an extra channel.",
             "registry_geoextras.interfaces:SpectralIndex"),
]

SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="positional_encoder",
        name="rope-2d",
        target="registry_geoextras.rope2d:build",
        summary="Axial 2-D rotary positions over the patch (row, column) grid, inside attention; follows the "
        "kept tokens under MAE, leaves the cls token unrotated.",
        modality="imagery",
        tags=("geoextras", "2d", "rotary"),
        config=Rope2DConfig,
        provides={"position_mode": "rotary", "grid": 2},
        requires={"embed_dim": None, "heads": None},
    ),
    ComponentSpec(
        kind="tokenizer",
        name="patch",
        target="registry_geoextras.patch:build",
        summary="registry-gfm's patch tokenizer plus a LayerNorm on each token (patch_norm) and optional "
        "spectral-index channels (indices = ['ndvi']).",
        modality="imagery",
        tags=("geoextras", "patch", "continuous"),
        config=GeoPatchConfig,
        # The bundled tokenizer's ports, unchanged: recipes that use `patch` compose as before.
        provides={"tokens": "continuous", "patch_size": None, "frames": None, "grid": None, "bands": None},
        replaces="gfm:patch",
    ),
    ComponentSpec(
        kind="spectral_index",
        name="ndvi",
        target="registry_geoextras.indices:build_ndvi",
        summary="NDVI = (nir - red) / (nir + red) per pixel, in [-1, 1].",
        modality="imagery",
        tags=("geoextras", "vegetation"),
        config=NDVIConfig,
    ),
]
